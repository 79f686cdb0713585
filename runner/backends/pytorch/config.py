"""Schema of `backend=pytorch`."""

from dataclasses import dataclass


@dataclass
class PyTorchBackendConfig:
    name: str = "pytorch"
