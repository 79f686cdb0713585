"""The backend plugin's config side: the schema every backend option extends, the capabilities a backend declares,
and the registry that finds each backend's schema in its own folder (runner/backends/<name>/config.py).

Checks, stages and the reference comparison ask a backend's schema what it supports, never its name; this module
imports no execution code, so validating a config stays cheap."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, TypeVar

from omegaconf import MISSING

from runner.registry import Registry

B = TypeVar("B", bound=type)

BACKEND_PACKAGE = "runner.backends"


@dataclass
class BackendConfig:
    name: str = MISSING
    # the run's model is a torch.nn.Module the runner can change: quantization, conversions (convert.*),
    # convert.compile, device maps (hardware=multi_gpu), tensor parallelism, the attention probe
    runs_torch_modules: ClassVar[bool] = False


BACKEND_CONFIGS: Registry[type[BackendConfig]] = Registry("backend")


def backend_config(name: str) -> Callable[[B], B]:
    """Register a backend's schema under `name` (its `backend.name`, and `base_<name>` in Hydra's ConfigStore)."""
    return BACKEND_CONFIGS.register(name)


def backend_folders() -> list[str]:
    """Every backend: each sub-package of runner/backends is one."""
    package = importlib.import_module(BACKEND_PACKAGE)
    return sorted(m.name for m in pkgutil.iter_modules(package.__path__) if m.ispkg and not m.name.startswith("_"))


def import_backend_modules(module: str) -> None:
    """Import `runner.backends.<name>.<module>` of every backend that has one (config, checks, backend)."""
    for folder in backend_folders():
        if importlib.util.find_spec(f"{BACKEND_PACKAGE}.{folder}.{module}") is not None:
            importlib.import_module(f"{BACKEND_PACKAGE}.{folder}.{module}")


def torch_module_backends() -> list[str]:
    """The backends that declare `runs_torch_modules`: what a fix names when an option needs a PyTorch model."""
    backend_schemas()
    return [name for name in BACKEND_CONFIGS.names() if BACKEND_CONFIGS.get(name).runs_torch_modules]


def backend_schemas() -> dict[str, type[BackendConfig]]:
    """Schema name (`base_<name>`) -> schema, for every backend folder."""
    import_backend_modules("config")
    return {f"base_{name}": BACKEND_CONFIGS.get(name) for name in BACKEND_CONFIGS.names()}
