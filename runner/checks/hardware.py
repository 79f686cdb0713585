"""Checks of the hardware group beyond "the device exists": multi-GPU budgets that parse, name GPUs this host
has, and can hold the model; options that only multi_gpu uses."""

from __future__ import annotations

import psutil

from runner.checks.base import check
from runner.config.backend import torch_module_backends
from runner.config.hardware import DeviceKind
from runner.config.run import RunConfig
from runner.devices import visible_gpus
from runner.errors import ConfigError
from runner.placement import GB, estimated_bytes, parse_budgets, predict_device_map


def _multi_gpu(cfg: RunConfig) -> bool:
    return cfg.hardware.kind == DeviceKind.multi_gpu


@check
def multi_gpu_options(cfg: RunConfig) -> None:
    hardware = cfg.hardware
    if _multi_gpu(cfg):
        return
    for key in ("max_memory", "offload"):
        if getattr(hardware, key):
            raise ConfigError(
                f"hardware.{key} splits a model over devices, which hardware={hardware.name} does not do: "
                "use hardware=multi_gpu"
            )


@check
def multi_gpu_needs_pytorch(cfg: RunConfig) -> None:
    if _multi_gpu(cfg) and not cfg.backend.runs_torch_modules:
        raise ConfigError(
            f"hardware=multi_gpu places a PyTorch model with accelerate's device_map; backend={cfg.backend.name} "
            f"cannot use it. Use hardware=cuda, or backend={' or '.join(torch_module_backends())}"
        )


@check
def budgets_name_real_devices(cfg: RunConfig) -> None:
    if not _multi_gpu(cfg):
        return
    budgets = parse_budgets(cfg.hardware)
    if "cpu" in budgets and not cfg.hardware.offload:
        raise ConfigError(
            "hardware.max_memory.cpu gives the CPU a budget, which only offloading uses: "
            "set hardware.offload=true, or drop the cpu entry"
        )
    available = visible_gpus()
    missing = [k for k in budgets if isinstance(k, int) and k >= available]
    if available and missing:  # with no GPU at all, device_exists already says so
        raise ConfigError(
            f"hardware.max_memory names GPU {', '.join(map(str, missing))}, but this host has {available} GPU(s) "
            f"(indexes 0..{available - 1}); transformers would only warn and place nothing there"
        )


@check
def budgets_hold_the_model(cfg: RunConfig) -> None:
    """Before loading: would accelerate have to spill the model to disk within these budgets?"""
    if not _multi_gpu(cfg):
        return
    try:
        budgets = parse_budgets(cfg.hardware)
    except ConfigError:
        return  # budgets_name_real_devices reports it
    if not any(isinstance(k, int) for k in budgets):
        return  # every GPU's free memory, known only on the GPU host at load time
    if cfg.hardware.offload:  # what load_budgets gives the CPU at load time
        budgets.setdefault("cpu", psutil.virtual_memory().available)
    placement = predict_device_map(cfg.model, cfg.quant, budgets)
    spilled = [name for name, device in placement.items() if device == "disk"]
    if not spilled:
        return
    need = estimated_bytes(cfg.model, cfg.quant)
    given = sum(budgets.values())
    scheme = f"quant={cfg.quant.name}" if cfg.quant.bits else f"{cfg.model.dtype.value} weights"
    fix = "raise hardware.max_memory"
    if not cfg.hardware.offload:
        fix += ", or let the rest go to the CPU with hardware.offload=true"
        if cfg.quant.bits:
            fix += " quant.llm_int8_enable_fp32_cpu_offload=true"
    shown = ", ".join(name or "the whole model" for name in spilled[:3])
    raise ConfigError(
        f"hardware.max_memory={cfg.hardware.max_memory} ({given / GB:.2f} GB in all) cannot hold "
        f"model={cfg.model.name} with {scheme} (about {need / GB:.2f} GB): {len(spilled)} module(s) would not fit "
        f"on any device ({shown}{', ...' if len(spilled) > 3 else ''}). To fix it, {fix}"
    )
