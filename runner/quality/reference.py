"""The reference model's quality figures, cached per (model, weights, dtype, device type, text sha256, chunking), so
that a sweep loads the reference once, not once per job."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from runner.models.build import cache_folder

log = logging.getLogger(__name__)
FORMAT = 1  # bump when what is stored changes


def path_for(model, key: dict) -> Path:
    return cache_folder("quality-reference", model, {**key, "format": FORMAT}) / "reference.pt"


def load(path: Path) -> dict | None:
    return torch.load(path, weights_only=True) if path.exists() else None


def store(path: Path, figures: dict) -> None:
    """Tensors and lists only (read back with weights_only=True); written whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(figures, partial)
    os.replace(partial, path)
    log.info("reference quality figures cached at %s", path)
