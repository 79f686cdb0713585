"""Runs the configured stages in order; whatever ran is reversed at the end, even after a failure."""

from __future__ import annotations

import logging

from runner.context import RunContext
from runner.pipeline_reverse import reverse_all
from runner.stages import STAGES

log = logging.getLogger(__name__)


def run_stages(ctx: RunContext, names: list[str]) -> RunContext:
    """Run the named stages in order, each noted as completed so that `reverse_all` can undo it. An unknown name
    fails before any stage runs."""
    stages = [STAGES.get(name)() for name in names]
    for stage in stages:
        log.info("stage %s", stage.name)
        ctx = stage.run(ctx)
        ctx.completed.append(stage)
    return ctx


def run_pipeline(ctx: RunContext) -> RunContext:
    names = list(ctx.cfg.pipeline.stages)
    ctx.record["stages"] = names
    try:
        ctx = run_stages(ctx, names)
    finally:
        if ctx.backend is not None:
            reverse_all(ctx)
    return ctx
