"""Errors the user can act on. They are printed as one clear message, never as a bare traceback."""


class RunnerError(Exception):
    """Base class: the message names the bad input and the fix."""


class ConfigError(RunnerError):
    """An option or combination that cannot run, found before anything loads."""


class MeasurementError(RunnerError):
    """A measurement that is implausible and must not be reported."""


class OptimizationNotApplied(RunnerError):
    """An optimization that was asked for but did not happen (nothing quantized, kernel not used)."""
