"""save: write the model with save_pretrained when `save.model=true`; conversions are undone first."""

from __future__ import annotations

from runner.context import RunContext
from runner.pipeline_reverse import reverse_all
from runner.stages.base import Stage, stage


@stage("save")
class Save(Stage):
    def run(self, ctx: RunContext) -> RunContext:
        if not ctx.cfg.save.model:
            ctx.record["save"] = {"saved": False}
            return ctx
        reverse_all(ctx)  # a canonical Transformers checkpoint, whatever ran before
        directory = ctx.run_dir / ctx.cfg.save.directory
        ctx.backend.save(directory)
        ctx.record["save"] = {"saved": True, "directory": str(directory)}
        return ctx
