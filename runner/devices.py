"""Turn the hardware group into a torch device, with clear errors for devices that are not there."""

from __future__ import annotations

import torch

from runner.config.hardware import DeviceKind, HardwareConfig
from runner.distributed.tp import rank_device
from runner.errors import ConfigError
from runner.placement import gpus


def visible_gpus() -> int:
    """How many CUDA GPUs torch can use here (0 on a CPU-only build or host)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def none_seen() -> str:
    """Why a GPU run cannot start here, with what would explain it (a CPU build of torch, say)."""
    return f"torch sees none (torch {torch.__version__}, CUDA build: {torch.version.cuda is not None})"


def device_or_none(hardware: HardwareConfig) -> torch.device | None:
    """The device, or None where it does not exist: for checks about something else (`device_exists` reports it)."""
    try:
        return resolve_device(hardware)
    except ConfigError:
        return None


def resolve_device(hardware: HardwareConfig) -> torch.device:
    if hardware.kind == DeviceKind.tp:  # this torchrun rank's device; checks/distributed.py checks the GPUs
        return rank_device(hardware)
    if hardware.kind == DeviceKind.cpu:
        return torch.device("cpu")
    available = visible_gpus()
    if hardware.kind == DeviceKind.auto:
        return torch.device("cuda", 0) if available else torch.device("cpu")
    if not available:
        raise ConfigError(
            f"hardware={hardware.name} needs a CUDA GPU, but {none_seen()}. Use hardware=cpu or hardware=auto."
        )
    if not 0 <= hardware.device < available:
        raise ConfigError(
            f"hardware.device={hardware.device} does not exist: this host has {available} GPU(s), "
            f"valid indexes are 0..{available - 1}"
        )
    if hardware.kind == DeviceKind.multi_gpu:
        # inputs go to, and clocks read, the first GPU of the split (checks/hardware.py validates the budgets)
        return torch.device("cuda", min(gpus(hardware), default=0))
    return torch.device("cuda", hardware.device)
