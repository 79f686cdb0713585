"""Build a Transformers model from a preset (random weights) or a checkpoint, straight onto its device."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel

from runner.config.model import DType, ModelConfig
from runner.models.architecture import architecture_config, auto_class
from runner.models.source import WeightsSource

log = logging.getLogger(__name__)

TORCH_DTYPES = {DType.float32: torch.float32, DType.float16: torch.float16, DType.bfloat16: torch.bfloat16}


def torch_dtype(dtype: DType) -> torch.dtype:
    return TORCH_DTYPES[dtype]


def cache_folder(kind: str, model: ModelConfig, key) -> Path:
    """`<RUNNER_CACHE>/<kind>/<model>-<dtype>-<digest of key>`: one folder per distinct key, reused across runs."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:12]
    root = Path(os.environ.get("RUNNER_CACHE", "outputs/.cache"))
    return root / kind / f"{model.name}-{model.dtype.value}-{digest}"


@contextlib.contextmanager
def filling(folder: Path) -> Iterator[Path]:
    """A private folder to write a cache folder's files into, which becomes `folder` in one rename when the block
    ends: a reader never sees half a checkpoint, and two processes filling the same folder at once (parallel test
    workers, two sweeps) do not mix their files; the first to finish wins and the other's copy is dropped."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".tmp"))
    try:
        yield tmp
        try:
            tmp.rename(folder)
        except OSError:
            if not folder.exists():  # not another process's finished copy: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def random_checkpoint(model: ModelConfig, device: torch.device) -> Path:
    """A saved random-weight checkpoint of the preset, made once and reused.

    Quantization and `device_map` placement go through `from_pretrained`, which needs a checkpoint; the
    random weights are built on `device` (no full-size CPU copy) and written under the cache folder.
    """
    key = [model.model_type, dict(model.architecture), model.dtype.value, model.seed, model.task.value]
    folder = cache_folder("random-weights", model, key)
    if (folder / "config.json").exists():
        return folder
    log.info("writing a random-weight checkpoint of %s to %s (once)", model.name, folder)
    built = build_random(model, "eager", device)
    with filling(folder) as tmp:
        built.save_pretrained(tmp)
    del built
    return folder


def build_random(model: ModelConfig, attn_implementation: str, device: torch.device) -> PreTrainedModel:
    config = architecture_config(model)
    torch.manual_seed(model.seed)
    with torch.device(device):
        built = auto_class(model.task).from_config(
            config, dtype=torch_dtype(model.dtype), attn_implementation=attn_implementation
        )
    return built.eval()


def build_model(
    model: ModelConfig,
    source: WeightsSource,
    attn_implementation: str,
    device: torch.device,
    **from_pretrained: Any,
) -> PreTrainedModel:
    """Random weights are built directly; anything that needs `from_pretrained` (a checkpoint,
    quantization, a device map) loads a checkpoint, a cached random one if need be."""
    if source.kind == "random" and not from_pretrained:
        return build_random(model, attn_implementation, device)
    location = source.location if source.kind == "pretrained" else str(random_checkpoint(model, device))
    from_pretrained.setdefault("device_map", {"": device})
    built = auto_class(model.task).from_pretrained(
        location,
        dtype=torch_dtype(model.dtype),
        attn_implementation=attn_implementation,
        revision=model.revision if source.kind == "pretrained" else None,
        trust_remote_code=model.trust_remote_code,
        **from_pretrained,
    )
    return built.eval()
