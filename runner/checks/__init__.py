"""Checks of a whole run config, before anything loads. Each module here adds its checks with `@check`
and is found automatically; validation has no side effects (no environment changes, no network)."""

from runner.checks.base import CHECKS, check, validate
from runner.discovery import import_all

import_all(__name__)

__all__ = ["CHECKS", "check", "validate"]
