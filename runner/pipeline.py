"""Runs the configured stages in order, and owns undoing their changes to the model: conversions are reversed
once, newest first, before a stage that declares it needs the unconverted model (`reverse`, `save`) and at the end,
even after a failure."""

from __future__ import annotations

import logging

from runner.context import RunContext
from runner.stages import STAGES

log = logging.getLogger(__name__)


def reverse_all(ctx: RunContext) -> None:
    """Undo the model changes of completed stages, once, newest first."""
    if ctx.reversed:
        return
    for done in reversed(ctx.completed):
        done.reverse(ctx)
    ctx.reversed = True


def run_stages(ctx: RunContext, names: list[str]) -> RunContext:
    """Run the named stages in order, each noted as completed so that `reverse_all` can undo it. An unknown name
    fails before any stage runs."""
    stages = [STAGES.get(name)() for name in names]
    for stage in stages:
        if not stage.uses_reference:
            ctx.release_reference()  # consecutive stages share the reference model; no other stage sees it
        if stage.needs_unconverted_model:
            reverse_all(ctx)
        log.info("stage %s", stage.name)
        ctx = stage.run(ctx)
        ctx.completed.append(stage)
    return ctx


def run_pipeline(ctx: RunContext) -> RunContext:
    names = list(ctx.cfg.pipeline.stages)
    ctx.record.stages = names
    try:
        ctx = run_stages(ctx, names)
    finally:
        ctx.release_reference()
        if ctx.backend is not None:
            reverse_all(ctx)
    return ctx
