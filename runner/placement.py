"""Where the model's modules go: accelerate's device_map for hardware=multi_gpu, with per-device budgets,
a check before loading that the budgets can hold the model, and the placement record after loading."""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from typing import Any

import psutil
import torch
from accelerate import infer_auto_device_map
from accelerate.utils import convert_file_size_to_int, get_balanced_memory

from runner.config.hardware import DeviceKind, HardwareConfig
from runner.config.model import ModelConfig
from runner.config.quant import QuantConfig
from runner.errors import ConfigError

GB = 1e9


def parse_budgets(hardware: HardwareConfig) -> dict[int | str, int]:
    """`hardware.max_memory` as accelerate takes it: GPU index or "cpu" -> bytes ("600MB", "1GiB" or an int)."""
    budgets: dict[int | str, int] = {}
    for key, value in (hardware.max_memory or {}).items():
        device = int(key) if str(key).isdigit() else str(key)
        if device != "cpu" and not isinstance(device, int):
            raise ConfigError(
                f"hardware.max_memory key {key!r} is not a device: use GPU indexes and 'cpu', e.g. {{0: 600MB, 1: 1GB}}"
            )
        try:
            size = convert_file_size_to_int(value)
        except (ValueError, TypeError) as e:
            raise ConfigError(f"hardware.max_memory.{key}={value!r} is not a size: write 600MB, 1GB or 2GiB") from e
        if size <= 0:
            raise ConfigError(f"hardware.max_memory.{key}={value!r} must be more than 0")
        budgets[device] = size
    return budgets


def gpus(hardware: HardwareConfig) -> list[int]:
    """The GPUs a multi_gpu run uses: those named in max_memory, else every visible one."""
    named = sorted(k for k in parse_budgets(hardware) if isinstance(k, int))
    return named or list(range(torch.cuda.device_count()))


def load_budgets(hardware: HardwareConfig) -> dict[int | str, int]:
    """The max_memory passed to from_pretrained. Without offload the CPU gets nothing, so a model that does not
    fit fails instead of silently running from host memory; with it, the CPU gets its budget or what is free."""
    budgets = parse_budgets(hardware)
    for index in gpus(hardware):
        budgets.setdefault(index, torch.cuda.mem_get_info(index)[0])
    if hardware.offload:
        budgets.setdefault("cpu", psutil.virtual_memory().available)
    return budgets


def from_pretrained_options(hardware: HardwareConfig) -> dict[str, Any]:
    if hardware.kind != DeviceKind.multi_gpu:
        return {}
    return {"device_map": "auto", "max_memory": load_budgets(hardware)}


@contextlib.contextmanager
def _quiet(name: str):
    # accelerate warns about every budgeted GPU that this host lacks; the check runs on CPU-only hosts too
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def predict_device_map(model: ModelConfig, quant: QuantConfig, budgets: dict[int | str, int]) -> dict[str, Any]:
    """accelerate's placement of the preset in these budgets, the way transformers computes it for
    device_map="auto": budgets balanced over the GPUs, then 10% kept back for buffers when bitsandbytes
    quantizes, with quantized Linear weights at their packed size (the meta-device model allocates nothing).
    Anything that does not fit is mapped to "disk"."""
    from runner.quant.sizes import empty_preset, quantized_dtypes

    empty = empty_preset(model)
    layout = {
        "no_split_module_classes": empty._no_split_modules,
        "dtype": empty.dtype,
        "special_dtypes": quantized_dtypes(empty, quant),
    }
    with _quiet("accelerate.utils.modeling"):
        if sum(isinstance(k, int) for k in budgets) > 1:
            budgets = {**budgets, **get_balanced_memory(empty, max_memory=dict(budgets), **layout)}
        if quant.bits is not None:  # transformers' bitsandbytes quantizers keep 10% of each budget for buffers
            budgets = {device: int(size * 0.9) for device, size in budgets.items()}
        return infer_auto_device_map(empty, max_memory=budgets, **layout)


def estimated_bytes(model: ModelConfig, quant: QuantConfig) -> int:
    from accelerate.utils import compute_module_sizes

    from runner.quant.sizes import empty_preset, quantized_dtypes

    empty = empty_preset(model)
    return compute_module_sizes(empty, dtype=empty.dtype, special_dtypes=quantized_dtypes(empty, quant))[""]


def device_label(device: Any) -> str:
    return f"cuda:{device}" if isinstance(device, int) else str(device)


def _parameters(model: torch.nn.Module, name: str) -> list[torch.nn.Parameter]:
    try:
        return list(model.get_submodule(name).parameters())
    except AttributeError:  # the map can name a single parameter
        return [model.get_parameter(name)]


def placement_summary(model: torch.nn.Module, device: torch.device) -> dict[str, Any]:
    """Which modules sit on which device, and how many parameter bytes each device holds."""
    device_map = getattr(model, "hf_device_map", None) or {"": str(device)}
    modules = {name: device_label(where) for name, where in device_map.items()}
    per_device: dict[str, dict[str, int]] = defaultdict(lambda: {"modules": 0, "parameter_bytes": 0})
    counted: set[int] = set()  # a tied weight (embeddings = lm_head) is one tensor: count it once
    for name, where in modules.items():
        # sized through the map, not param.device: accelerate keeps CPU-offloaded weights on the meta device
        per_device[where]["modules"] += 1
        for tensor in _parameters(model, name):
            if id(tensor) not in counted:
                counted.add(id(tensor))
                per_device[where]["parameter_bytes"] += tensor.nelement() * tensor.element_size()
    if "disk" in per_device:
        raise ConfigError(
            f"accelerate placed {per_device['disk']['modules']} module(s) on disk: the GPU budgets cannot hold the "
            "model. Raise hardware.max_memory, or set hardware.offload=true to use the CPU"
        )
    return {
        "device_map": "auto" if getattr(model, "hf_device_map", None) else "single device",
        "devices": dict(sorted(per_device.items())),
        "modules": modules,
    }
