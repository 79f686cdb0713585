"""Schema of the `hardware` group: where the model runs."""

from dataclasses import dataclass
from enum import Enum


class DeviceKind(str, Enum):
    cpu = "cpu"
    cuda = "cuda"
    auto = "auto"  # cuda when a GPU is visible, else cpu


@dataclass
class HardwareConfig:
    name: str = "auto"
    kind: DeviceKind = DeviceKind.auto
    device: int = 0  # GPU index for kind=cuda
    threads: int | None = None  # torch intra-op threads on the CPU; None keeps torch's default
