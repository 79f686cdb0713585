"""Checks of the quant group: a scheme bitsandbytes has, on a backend that runs it, with the package there."""

from __future__ import annotations

import importlib.util

from runner.checks.base import check
from runner.config.run import RunConfig
from runner.devices import device_or_none
from runner.errors import ConfigError
from runner.quant import is_quantized
from runner.quant.sizes import empty_preset, quantizable_linears

CPU_4BIT_BLOCK = 64


@check
def known_bits(cfg: RunConfig) -> None:
    if cfg.quant.bits not in (None, 4, 8):
        raise ConfigError(f"quant.bits={cfg.quant.bits} is not a bitsandbytes scheme: use quant=8bit or quant=4bit")


@check
def bitsandbytes_needs_pytorch(cfg: RunConfig) -> None:
    if is_quantized(cfg.quant) and cfg.backend.name != "pytorch":
        raise ConfigError(
            f"quant={cfg.quant.name} is bitsandbytes quantization of PyTorch Linear layers; "
            f"backend={cfg.backend.name} cannot run it. Use backend=pytorch, or quant=none with "
            f"backend={cfg.backend.name}"
        )


@check
def bitsandbytes_installed(cfg: RunConfig) -> None:
    if is_quantized(cfg.quant) and importlib.util.find_spec("bitsandbytes") is None:
        raise ConfigError(f"quant={cfg.quant.name} needs bitsandbytes: pip install 'runner[quant]'")


@check
def offloaded_modules_stay_unquantized(cfg: RunConfig) -> None:
    # bitsandbytes layers run on the GPU only; transformers refuses CPU placement unless those modules stay fp32
    if is_quantized(cfg.quant) and cfg.hardware.offload and not cfg.quant.llm_int8_enable_fp32_cpu_offload:
        raise ConfigError(
            f"hardware.offload=true with quant={cfg.quant.name}: modules that land on the CPU cannot be "
            "bitsandbytes layers. Set quant.llm_int8_enable_fp32_cpu_offload=true (they stay unquantized, in fp32), "
            "or drop hardware.offload"
        )


@check
def cpu_4bit_block_size(cfg: RunConfig) -> None:
    """bitsandbytes' CPU 4-bit kernel groups each weight row in blocks of 64: a Linear layer whose input size is
    not a multiple of 64 quantizes, then fails at its first forward pass with a reshape error."""
    if cfg.quant.bits != 4 or cfg.backend.name != "pytorch":
        return
    device = device_or_none(cfg.hardware)
    if device is None or device.type != "cpu":
        return  # no device: device_exists reports it
    model = empty_preset(cfg.model)
    odd = [
        f"{name} ({model.get_submodule(name).in_features})"
        for name in quantizable_linears(model, cfg.quant)
        if model.get_submodule(name).in_features % CPU_4BIT_BLOCK
    ]
    if odd:
        raise ConfigError(
            f"quant={cfg.quant.name} on the CPU needs Linear input sizes divisible by {CPU_4BIT_BLOCK} "
            f"(bitsandbytes' CPU 4-bit blocks); model={cfg.model.name} has {', '.join(odd[:3])}. "
            "Run on a GPU (hardware=cuda), or use quant=8bit"
        )
