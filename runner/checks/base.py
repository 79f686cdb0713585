"""The check registry and the validator that runs every check."""

from __future__ import annotations

from collections.abc import Callable

from runner.config.run import RunConfig
from runner.errors import ConfigError

CHECKS: list[Callable[[RunConfig], None]] = []


def check(fn: Callable[[RunConfig], None]) -> Callable[[RunConfig], None]:
    """Register a check: it raises ConfigError naming the option and the fix."""
    CHECKS.append(fn)
    return fn


def raise_all(problems: list[str]) -> None:
    """One check's several findings as one ConfigError."""
    if problems:
        raise ConfigError("; ".join(problems))


def validate(cfg: RunConfig) -> RunConfig:
    problems = []
    for fn in CHECKS:
        try:
            fn(cfg)
        except ConfigError as e:
            problems.append(str(e))
    problems = list(dict.fromkeys(problems))  # two checks that meet the same root cause say it once
    if problems:
        raise ConfigError("\n".join(f"- {p}" for p in problems) if len(problems) > 1 else problems[0])
    return cfg
