"""Checks of `convert.compile`, before anything loads."""

from __future__ import annotations

from runner.checks.base import check
from runner.config.pipeline import COMPILE_MODES
from runner.config.run import RunConfig
from runner.devices import device_or_none
from runner.errors import ConfigError


@check
def compile_needs_generate_on_a_gpu(cfg: RunConfig) -> None:
    if not cfg.convert.compile:
        return
    if cfg.scenario.name != "generate" or not cfg.backend.runs_torch_modules:
        raise ConfigError(
            "convert.compile=true compiles the decode step of generation: use scenario=generate with backend=pytorch"
        )
    device = device_or_none(cfg.hardware)
    if device is not None and device.type != "cuda":  # no device at all: device_exists reports it
        raise ConfigError(
            "convert.compile=true captures CUDA graphs and needs a GPU: use hardware=cuda, "
            "or drop convert.compile on the CPU"
        )
    if cfg.scenario.warmup_runs < 2:
        raise ConfigError(
            f"convert.compile=true with scenario.warmup_runs={cfg.scenario.warmup_runs}: "
            "compilation and CUDA-graph capture happen in the first calls; use warmup_runs>=2 "
            "so they stay out of the measurements"
        )


@check
def known_compile_mode(cfg: RunConfig) -> None:
    mode = cfg.convert.compile_options.mode
    if mode not in COMPILE_MODES:
        raise ConfigError(
            f"convert.compile_options.mode={mode} is not a torch.compile mode: use {', '.join(COMPILE_MODES)}"
        )
