"""The check registry and the validator that runs every check."""

from __future__ import annotations

from collections.abc import Callable

from runner.config.run import RunConfig
from runner.errors import ConfigError

Check = Callable[[RunConfig], None]
# checks of the config's own values (ranges, known keys): they run first, and when one fails the checks that build
# from those values (a model config, a device) do not run, so a bad value is reported, never a traceback
VALUE_CHECKS: list[Check] = []
CHECKS: list[Check] = []


def check(fn: Check | None = None, *, values: bool = False):
    """Register a check: it raises ConfigError naming the option and the fix. `values=True`: a check of the
    config's own values, which every other check may rely on."""

    def add(fn: Check) -> Check:
        (VALUE_CHECKS if values else CHECKS).append(fn)
        return fn

    return add(fn) if fn is not None else add


def raise_all(problems: list[str]) -> None:
    """One check's several findings as one ConfigError."""
    if problems:
        raise ConfigError("; ".join(problems))


def _problems(checks: list[Check], cfg: RunConfig) -> list[str]:
    problems = []
    for fn in checks:
        try:
            fn(cfg)
        except ConfigError as e:
            problems.append(str(e))
    return list(dict.fromkeys(problems))  # two checks that meet the same root cause say it once


def validate(cfg: RunConfig) -> RunConfig:
    for checks in (VALUE_CHECKS, CHECKS):
        if problems := _problems(checks, cfg):
            raise ConfigError("\n".join(f"- {p}" for p in problems) if len(problems) > 1 else problems[0])
    return cfg
