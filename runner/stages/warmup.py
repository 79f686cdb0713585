"""warmup: unmeasured runs of the scenario, so compilation and allocation stay out of the figures."""

from __future__ import annotations

from runner.context import RunContext
from runner.record import Warmup as WarmupSection
from runner.scenarios import SCENARIOS
from runner.stages.base import Stage, stage


@stage("warmup")
class Warmup(Stage):
    def run(self, ctx: RunContext) -> RunContext:
        SCENARIOS.get(ctx.cfg.scenario.name)(ctx).warmup()
        ctx.record.warmup = WarmupSection(runs=ctx.cfg.scenario.warmup_runs)
        return ctx
