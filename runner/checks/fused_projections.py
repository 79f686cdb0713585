"""Checks of `convert.fuse_projections`, before anything loads: the conversion's own refusal (model type, bias,
backend, quantization, placement)."""

from __future__ import annotations

from runner.checks.base import check
from runner.config.run import RunConfig
from runner.errors import ConfigError


@check
def fuse_projections_applies(cfg: RunConfig) -> None:
    if not cfg.convert.fuse_projections:
        return
    from runner.convert.fused_projections import refusal  # imported only when a run asks for the conversion

    if (why := refusal(cfg)) is not None:
        raise ConfigError(why)
