"""infer: the measured calls of the scenario, with peak memory over them."""

from __future__ import annotations

from runner.context import RunContext
from runner.measure.memory import MemoryTracker
from runner.scenarios import SCENARIOS
from runner.stages.base import Stage, stage


@stage("infer")
class Infer(Stage):
    def run(self, ctx: RunContext) -> RunContext:
        scenario = SCENARIOS.get(ctx.cfg.scenario.name)(ctx)
        memory = MemoryTracker(ctx.backend.devices())
        memory.start()
        ctx.record["measurements"] = scenario.measure()
        ctx.record["memory"] = memory.stop()
        return ctx
