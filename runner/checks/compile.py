"""Checks of `convert.compile`, before anything loads."""

from __future__ import annotations

from runner.checks.base import check
from runner.config.pipeline import COMPILE_MODES
from runner.config.run import RunConfig
from runner.devices import device_or_none
from runner.errors import ConfigError, did_you_mean


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


@check
def usable_realize_threshold(cfg: RunConfig) -> None:
    threshold = cfg.convert.compile_options.realize_acc_reads_threshold
    if threshold is None:
        return
    import torch
    from torch._inductor import config as inductor_config

    if threshold < 0:
        raise ConfigError(
            f"convert.compile_options.realize_acc_reads_threshold={threshold}: use a count of buffer reads (>= 0), "
            "or null for the runner's choice"
        )
    if not hasattr(inductor_config, "realize_acc_reads_threshold"):
        raise ConfigError(
            f"convert.compile_options.realize_acc_reads_threshold={threshold}: torch {torch.__version__}'s inductor "
            "has no such option; use null"
        )


@check
def usable_tuning_trials(cfg: RunConfig) -> None:
    trials = cfg.convert.compile_options.tuning_trials
    if trials < 1:
        raise ConfigError(
            f"convert.compile_options.tuning_trials={trials}: use a count of compilations (>= 1; 1 compiles once)"
        )
    if trials > 1 and not cfg.convert.compile:
        raise ConfigError(
            f"convert.compile_options.tuning_trials={trials} tunes the compiled decode step: add convert.compile=true"
        )


@check
def known_inductor_options(cfg: RunConfig) -> None:
    """convert.compile_options.inductor, checked as torch.compile checks its options, but before the model loads
    (torch.compile raises only when the decode step is first compiled, minutes into a 7B job)."""
    options = cfg.convert.compile_options.inductor
    if not options:
        return
    import torch
    from torch._inductor import config as inductor_config

    known = inductor_config.get_config_copy()
    get_type = getattr(inductor_config, "get_type", None)  # torch.compile's own type check uses it
    for key, value in options.items():
        name = key.replace("-", "_")
        if name not in known:
            raise ConfigError(
                f"convert.compile_options.inductor.{key} is not an inductor option of torch {torch.__version__}."
                f"{did_you_mean(name, known)} Options: torch._inductor.config (e.g. epilogue_fusion, "
                "benchmark_fusion, triton.cudagraphs)"
            )
        expected = get_type(name) if get_type is not None else None
        if isinstance(expected, type) and not isinstance(value, expected):
            raise ConfigError(
                f"convert.compile_options.inductor.{key}={value!r}: inductor takes a {type(known[name]).__name__} "
                f"there (default {known[name]!r})"
            )
