"""convert: model conversions (BetterTransformer, a backend's own export), undone by `reverse`."""

from __future__ import annotations

from runner.context import RunContext
from runner.convert.bettertransformer import Conversion, convert
from runner.stages.base import Stage, stage


@stage("convert")
class Convert(Stage):
    conversion: Conversion | None = None

    def run(self, ctx: RunContext) -> RunContext:
        model = getattr(ctx.backend, "model", None)
        record = ctx.section("convert")
        record["applied"] = []
        if ctx.cfg.convert.bettertransformer:
            self.conversion = convert(model, ctx.cfg)
            record["applied"].append("bettertransformer")
            record["bettertransformer"] = self.conversion.record
        record.update(ctx.backend.prepare())  # the backend's own: backend=onnxruntime exports to ONNX
        return ctx

    def reverse(self, ctx: RunContext) -> None:
        if self.conversion is not None:
            ctx.section("convert")["bettertransformer"] = self.conversion.reverse(ctx.backend.model)
            self.conversion = None
