"""Checks of `convert.fused_decode`, before anything loads: the step's own refusal (model type, bias, backend,
quantization, placement, scenario, batch, padding, the conversions it replaces) and a warm-up for its capture."""

from __future__ import annotations

from runner.checks.base import check
from runner.config.run import RunConfig
from runner.errors import ConfigError


@check
def fused_decode_applies(cfg: RunConfig) -> None:
    if not cfg.convert.fused_decode:
        return
    from runner.fused_decode.support import refusal  # imported only when a run asks for the step

    if (why := refusal(cfg)) is not None:
        raise ConfigError(why)
    if cfg.scenario.warmup_runs < 1:
        raise ConfigError(
            "convert.fused_decode=true with scenario.warmup_runs=0: the first call compiles the step's kernels and "
            "captures its CUDA graph; use warmup_runs>=1 so that stays out of the measurements"
        )
