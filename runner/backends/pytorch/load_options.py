"""The keyword arguments and contexts that the quant, hardware and attention groups add to loading and
inference. Each group contributes through one function here, so adding an option stays a local change."""

from __future__ import annotations

import contextlib
from typing import Any

from runner.config.run import RunConfig


def from_pretrained(cfg: RunConfig) -> dict[str, Any]:
    """Extra `from_pretrained` keywords (quantization_config, device_map, max_memory)."""
    return {}


def inference_context(cfg: RunConfig):
    return contextlib.nullcontext()
