"""save: write the model with save_pretrained when `save.model=true`: a canonical Transformers checkpoint, since
the pipeline undoes conversions before this stage (it declares it needs the unconverted model)."""

from __future__ import annotations

from runner.context import RunContext
from runner.errors import ConfigError
from runner.record import Save as SaveSection
from runner.stages.base import Stage, stage


@stage("save")
class Save(Stage):
    needs_unconverted_model = True

    def run(self, ctx: RunContext) -> RunContext:
        if not ctx.cfg.save.model:
            ctx.record.save = SaveSection(saved=False)
            return ctx
        run_dir = ctx.run_dir.resolve()
        directory = (run_dir / ctx.cfg.save.directory).resolve()  # a symlink inside the run could point out of it
        if directory == run_dir or not directory.is_relative_to(run_dir):
            raise ConfigError(f"save.directory={ctx.cfg.save.directory!r} resolves to {directory}, outside {run_dir}")
        ctx.backend.save(directory)
        ctx.record.save = SaveSection(saved=True, directory=str(directory))
        return ctx
