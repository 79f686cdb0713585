"""Checks of the run-level switches: process isolation, timeout, the report's baseline."""

from __future__ import annotations

import multiprocessing
import os

from runner.checks.base import check
from runner.config.run import RunConfig
from runner.errors import ConfigError

ISOLATE_CHOICES = {"auto": None, "true": True, "false": False}
# how a job's own process starts (runner/isolation.py); never fork: the child would inherit CUDA and threads
START_METHODS = ("forkserver", "spawn")


def start_method() -> str:
    """RUNNER_START_METHOD, else forkserver where the platform has it (Linux, macOS), else spawn."""
    method = os.environ.get("RUNNER_START_METHOD", "")
    if method and method not in START_METHODS:
        raise ConfigError(f"RUNNER_START_METHOD={method!r} is unknown: use {' or '.join(START_METHODS)}")
    return method or ("forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn")


def isolate_choice(value: str) -> bool | None:
    """True / False to force a child process or not; None for auto. OmegaConf turns `isolate=true` into "True"."""
    key = str(value).lower()
    if key not in ISOLATE_CHOICES:
        raise ConfigError(f"isolate={value!r} is unknown: use isolate=auto, isolate=true or isolate=false")
    return ISOLATE_CHOICES[key]


@check
def isolation(cfg: RunConfig) -> None:
    isolate_choice(cfg.isolate)
    start_method()
    if cfg.timeout_s is not None and cfg.timeout_s <= 0:
        raise ConfigError(f"timeout_s={cfg.timeout_s} must be positive, or null for no limit")
    if cfg.timeout_s is not None and isolate_choice(cfg.isolate) is False:
        raise ConfigError(
            f"timeout_s={cfg.timeout_s} needs the job in its own process to stop it: drop isolate=false, "
            "or add timeout_s=null to run in this process without a time limit"
        )


@check
def report_baseline(cfg: RunConfig) -> None:
    for selector in cfg.report.baseline:
        if "=" not in selector or not selector.split("=", 1)[0]:
            raise ConfigError(
                f"report.baseline entry {selector!r} is not KEY=VALUE: write e.g. "
                '\'report.baseline=["attention=eager","quant=none"]\''
            )
