"""reverse: undo every earlier stage's changes to the model (conversions), newest first. The pipeline does the
undoing (runner/pipeline.py) before any stage that needs the unconverted model; this stage only asks for it."""

from __future__ import annotations

from runner.context import RunContext
from runner.stages.base import Stage, stage


@stage("reverse")
class Reverse(Stage):
    needs_unconverted_model = True

    def run(self, ctx: RunContext) -> RunContext:
        return ctx
