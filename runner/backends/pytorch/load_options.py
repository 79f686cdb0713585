"""The keyword arguments and contexts that the quant, hardware and attention groups add to loading and
inference. Each group contributes through one function here, so adding an option stays a local change."""

from __future__ import annotations

from typing import Any

from runner.attention.kernels import forced_sdpa_kernels
from runner.config.run import RunConfig
from runner.distributed import tp
from runner.placement import from_pretrained_options
from runner.quant import is_quantized, method_of


def from_pretrained(cfg: RunConfig) -> dict[str, Any]:
    """Extra `from_pretrained` keywords (quantization_config, device_map, max_memory)."""
    options: dict[str, Any] = {}
    if is_quantized(cfg.quant):  # the method's plugin builds it (runner/quant/<method>.py)
        options["quantization_config"] = method_of(cfg.quant).quantization_config(cfg.quant, cfg.model.dtype)
    options.update(from_pretrained_options(cfg.hardware))
    options.update(tp.from_pretrained_options(cfg.hardware))  # hardware=tp: tp_plan="auto" over the torchrun ranks
    return options


def inference_context(cfg: RunConfig):
    """Entered around warmup and inference: the attention group's forced SDPA kernels (nothing when none)."""
    return forced_sdpa_kernels(cfg.attention)
