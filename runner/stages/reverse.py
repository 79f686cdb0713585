"""reverse: undo every earlier stage's changes to the model (conversions), newest first."""

from __future__ import annotations

from runner.context import RunContext
from runner.pipeline_reverse import reverse_all
from runner.stages.base import Stage, stage


@stage("reverse")
class Reverse(Stage):
    def run(self, ctx: RunContext) -> RunContext:
        reverse_all(ctx)
        return ctx
