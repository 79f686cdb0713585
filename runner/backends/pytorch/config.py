"""Schema of `backend=pytorch`: eager PyTorch execution of the Transformers model, the reference backend."""

from dataclasses import dataclass
from typing import ClassVar

from runner.config.backend import BackendConfig, backend_config


@backend_config("pytorch")
@dataclass
class PyTorchBackendConfig(BackendConfig):
    name: str = "pytorch"
    runs_torch_modules: ClassVar[bool] = True
