"""Tensor parallelism through transformers: the `from_pretrained` keywords, this rank's device, and the one-device
twin of the hardware that the compare stage checks a sharded model against."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import torch

from runner.config.hardware import DeviceKind, HardwareConfig

DEFAULT_SIZE = 2  # hardware.num_gpus when hardware=tp leaves it out


def enabled(hardware: HardwareConfig) -> bool:
    return hardware.kind == DeviceKind.tp


def is_rank() -> bool:
    """True inside a torchrun worker that joined its process group: the job runs here instead of being relaunched."""
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def tp_size(hardware: HardwareConfig) -> int:
    return hardware.num_gpus or DEFAULT_SIZE


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def rank_device(hardware: HardwareConfig) -> torch.device:
    """This process's device: GPU LOCAL_RANK (torchrun numbers the processes of a host from 0), or the CPU."""
    return torch.device("cpu") if hardware.tp_on_cpu else torch.device("cuda", local_rank())


def from_pretrained_options(hardware: HardwareConfig) -> dict[str, Any]:
    if not enabled(hardware):
        return {}
    # DistributedConfig exists in transformers 5.17 and 5.24 (the bare tp_plan= keyword is deprecated in 5.24).
    # device_map=None: transformers puts each shard on this rank's device itself and refuses a device_map with TP.
    from transformers.distributed import DistributedConfig

    return {"distributed_config": DistributedConfig(tp_plan="auto", tp_size=tp_size(hardware)), "device_map": None}


def unsharded(hardware: HardwareConfig) -> HardwareConfig:
    """The whole model on this rank's device: what a tensor-parallel run must agree with."""
    if not enabled(hardware):
        return hardware
    kind = DeviceKind.cpu if hardware.tp_on_cpu else DeviceKind.cuda
    return dataclasses.replace(hardware, kind=kind, device=local_rank(), num_gpus=None, tp_on_cpu=False)


def shard_report(model: torch.nn.Module) -> dict[str, Any]:
    """This rank's share of the parameters; fails if nothing was split (tensor parallelism silently not applied)."""
    from torch.distributed.tensor import DTensor

    from runner.errors import OptimizationNotApplied

    sharded, local_bytes, global_bytes = 0, 0, 0
    for parameter in model.parameters():
        local = parameter.to_local() if isinstance(parameter, DTensor) else parameter
        sharded += local.nelement() < parameter.nelement()
        local_bytes += local.nelement() * local.element_size()
        global_bytes += parameter.nelement() * parameter.element_size()
    if not sharded:
        raise OptimizationNotApplied(
            "hardware=tp: transformers loaded the model without splitting any parameter over the ranks "
            "(no tensor-parallel plan applied); check the model's base_model_tp_plan and the transformers version"
        )
    return {
        "plan": "auto",
        "sharded_parameters": sharded,
        "rank_parameter_bytes": local_bytes,
        "model_parameter_bytes": global_bytes,
    }
