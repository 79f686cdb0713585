"""Errors the user can act on. They are printed as one clear message, never as a bare traceback."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable


def did_you_mean(name: str, choices: Iterable[str], as_text: Callable[[str], str] = repr) -> str:
    """' Did you mean <the closest choice>?', or '' when none is close: the one way every message suggests a name."""
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" Did you mean {as_text(close[0])}?" if close else ""


class RunnerError(Exception):
    """Base class: the message names the bad input and the fix."""


class ConfigError(RunnerError):
    """An option or combination that cannot run, found before anything loads."""


class MeasurementError(RunnerError):
    """A measurement that is implausible and must not be reported."""


class OptimizationNotApplied(RunnerError):
    """An optimization that was asked for but did not happen (nothing quantized, kernel not used)."""
