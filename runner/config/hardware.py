"""Schema of the `hardware` group: where the model runs."""

from dataclasses import dataclass
from enum import Enum
from typing import Any


class DeviceKind(str, Enum):
    cpu = "cpu"
    cuda = "cuda"  # one GPU: `device`
    multi_gpu = "multi_gpu"  # accelerate's device_map="auto" over the GPUs (those named in `max_memory`)
    auto = "auto"  # cuda when a GPU is visible, else cpu
    tp = "tp"  # tensor parallel: every layer split over `num_gpus` GPUs, one torchrun process per GPU


@dataclass
class HardwareConfig:
    name: str = "auto"
    kind: DeviceKind = DeviceKind.auto
    device: int = 0  # GPU index for kind=cuda
    threads: int | None = None  # torch intra-op threads on the CPU; None keeps torch's default
    # multi_gpu only: per-device budgets as accelerate takes them, {0: 600MB, 1: 1GB, cpu: 8GB}; only the GPUs
    # named are used. None: every visible GPU, up to its free memory. Typed Any because OmegaConf cannot merge a
    # command-line dict into a None (or struct) dict node; runner/placement.py validates it.
    max_memory: Any = None
    offload: bool = False  # multi_gpu only: what does not fit on the GPUs goes to the CPU (slow; never to disk)
    # GPUs a job uses: tp's process count; what cluster launchers (conf/hydra/launcher/) ask for per job.
    # None: by kind (cpu 0, cuda 1, tp 2, multi_gpu the GPUs named in max_memory); see runner/distributed/resources.py
    num_gpus: int | None = None
    tp_on_cpu: bool = False  # tp only: CPU processes over gloo instead of GPUs, to try the path without GPUs (slow)
