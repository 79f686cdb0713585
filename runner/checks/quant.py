"""Checks of the quant group, asked of the method's plugin (runner/quant/<method>.py): a registered method, on a
backend that runs it, with its package installed, compiled only where it can be, plus the method's own checks."""

from __future__ import annotations

import importlib.util

from runner.checks.base import check, raise_all
from runner.config.backend import torch_module_backends
from runner.config.run import RunConfig
from runner.errors import ConfigError
from runner.quant import QUANT_METHODS, is_quantized, method_of  # the methods' declarations: no model code


@check
def known_method(cfg: RunConfig) -> None:
    if cfg.quant.method not in QUANT_METHODS:
        QUANT_METHODS.get(cfg.quant.method)  # raises, naming the close match and the choices


def _method(cfg: RunConfig):
    return method_of(cfg.quant) if is_quantized(cfg.quant) else None


@check
def method_runs_on_the_backend(cfg: RunConfig) -> None:
    method = _method(cfg)
    if method is not None and method.needs_torch_modules and not cfg.backend.runs_torch_modules:
        raise ConfigError(
            f"quant={cfg.quant.name} is {method.describe(cfg.quant)} quantization of PyTorch Linear layers; "
            f"backend={cfg.backend.name} cannot run it. Use backend={' or '.join(torch_module_backends())}, or "
            f"quant=none with backend={cfg.backend.name}"
        )


@check
def method_installed(cfg: RunConfig) -> None:
    method = _method(cfg)
    if method is not None and method.package and importlib.util.find_spec(method.package) is None:
        raise ConfigError(f"quant={cfg.quant.name} needs {method.package}: pip install 'runner[{method.extra}]'")


@check
def method_compiles(cfg: RunConfig) -> None:
    method = method_of(cfg.quant) if cfg.quant.method in QUANT_METHODS else None
    if method is not None and cfg.convert.compile and (reason := method.compilable(cfg.quant)):
        raise ConfigError(f"convert.compile=true with quant={cfg.quant.name}: {reason}")


@check
def method_options(cfg: RunConfig) -> None:
    """The method's own checks: devices, dtypes and options it supports, each with the reason."""
    if cfg.quant.method in QUANT_METHODS:
        raise_all(method_of(cfg.quant).problems(cfg))
