"""Checks of a whole run config, before anything loads. Each module here adds its checks with `@check`
and is found automatically, as is each backend's own checks.py (runner/backends/<name>/checks.py); validation
has no side effects (no environment changes, no network) and imports configs, not the execution stack."""

from runner.checks.base import CHECKS, check, validate
from runner.config.backend import import_backend_modules
from runner.discovery import import_all

import_all(__name__)
import_backend_modules("checks")

__all__ = ["CHECKS", "check", "validate"]
