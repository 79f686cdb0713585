"""Checks of the run-level switches: process isolation, timeout, the report's baseline."""

from __future__ import annotations

from runner.checks.base import check
from runner.config.run import RunConfig
from runner.errors import ConfigError
from runner.process import start_method

ISOLATE_CHOICES = {"auto": None, "true": True, "false": False}


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
