"""convert: model conversions (BetterTransformer, ...). With none configured it does nothing."""

from __future__ import annotations

from runner.context import RunContext
from runner.stages.base import Stage, stage


@stage("convert")
class Convert(Stage):
    def run(self, ctx: RunContext) -> RunContext:
        ctx.record["convert"] = {"applied": []}
        return ctx
