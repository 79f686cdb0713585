"""What a job asks a cluster for, read from its own hardware group: the GPUs (and CPU cores) it will use."""

from __future__ import annotations

from runner.config.hardware import DeviceKind, HardwareConfig
from runner.distributed.tp import tp_size
from runner.errors import ConfigError


def job_gpus(hardware: HardwareConfig, cluster_gpus: int | None = None) -> int:
    """GPUs this job needs. `cluster_gpus`: what the cluster has, where the launcher knows (None: unknown)."""
    kind = hardware.kind
    if kind == DeviceKind.cpu or (kind == DeviceKind.tp and hardware.tp_on_cpu):
        return 0
    if kind == DeviceKind.cuda:
        return hardware.device + 1  # GPU indexes count from 0 within what the job is given
    if kind == DeviceKind.tp:
        return tp_size(hardware)
    if kind == DeviceKind.multi_gpu:
        if hardware.num_gpus:
            return hardware.num_gpus
        from runner.placement import parse_budgets

        named = [device for device in parse_budgets(hardware) if isinstance(device, int)]
        if not named:
            raise ConfigError(
                "hardware=multi_gpu uses every GPU it sees, which a cluster launcher has to be told: "
                "set hardware.num_gpus=N (or name the GPUs in hardware.max_memory)"
            )
        return max(named) + 1
    return 0 if cluster_gpus == 0 else 1  # auto: a GPU when the cluster has any


def job_cpus(hardware: HardwareConfig) -> int | None:
    """CPU cores to reserve: hardware.threads when set, so concurrent CPU jobs do not share cores; else None."""
    return hardware.threads


def check_fits(needed: int, cluster_gpus: int, job: str) -> None:
    """A job asking for more GPUs than the whole cluster has would wait forever: fail before submitting."""
    if needed > cluster_gpus:
        raise ConfigError(
            f"{job} needs {needed} GPU(s) but the cluster has {cluster_gpus}: run it where there are enough GPUs, "
            "or lower hardware.num_gpus"
        )
