"""Backends by name. A backend is a folder of runner/backends: config.py (its schema, `@backend_config`),
backend.py (its Backend class, `@BACKENDS.register`) and, if it has any, checks.py; nothing is listed by hand."""

from __future__ import annotations

from runner.backends.base import BACKENDS, Backend
from runner.config.backend import import_backend_modules
from runner.context import RunContext


def create(ctx: RunContext) -> Backend:
    import_backend_modules("backend")
    return BACKENDS.get(ctx.cfg.backend.name)(ctx)
