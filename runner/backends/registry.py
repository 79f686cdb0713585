"""Backends by name: importing a backend's module registers it."""

from __future__ import annotations

from runner.backends.base import BACKENDS, Backend
from runner.backends.onnxruntime import backend as _onnxruntime  # noqa: F401  (registration)
from runner.backends.pytorch import backend as _pytorch  # noqa: F401  (registration)
from runner.context import RunContext


def create(ctx: RunContext) -> Backend:
    return BACKENDS.get(ctx.cfg.backend.name)(ctx)
