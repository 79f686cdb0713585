"""Checks of a whole run config, before anything loads. Each module here adds its checks with `@check`;
validation has no side effects (no environment changes, no network)."""

from runner.checks import core  # noqa: F401  (registration)
from runner.checks.base import CHECKS, check, validate

__all__ = ["CHECKS", "check", "validate"]
