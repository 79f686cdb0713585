"""Runs the configured stages in order; whatever ran is reversed at the end, even after a failure."""

from __future__ import annotations

import logging

from runner.context import RunContext
from runner.pipeline_reverse import reverse_all
from runner.stages import STAGES

log = logging.getLogger(__name__)


def run_pipeline(ctx: RunContext) -> RunContext:
    stages = [STAGES.get(name)() for name in ctx.cfg.pipeline.stages]
    ctx.record["stages"] = [s.name for s in stages]
    try:
        for stage in stages:
            log.info("stage %s", stage.name)
            ctx = stage.run(ctx)
            ctx.completed.append(stage)
    finally:
        if ctx.backend is not None:
            reverse_all(ctx)
    return ctx
