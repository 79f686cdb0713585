"""convert: model conversions (BetterTransformer, Falcon's fused attention, a backend's own export), undone by
`reverse` in the opposite order."""

from __future__ import annotations

from typing import Any

from runner.context import RunContext
from runner.convert import attention
from runner.convert.bettertransformer import Conversion, convert
from runner.stages.base import Stage, stage


@stage("convert")
class Convert(Stage):
    conversion: Conversion | None = None
    fused_attention: Any = None  # a conversion's FusedAttention (runner/convert/attention.py)

    def run(self, ctx: RunContext) -> RunContext:
        model = getattr(ctx.backend, "model", None)
        record = ctx.section("convert")
        record["applied"] = []
        if ctx.cfg.convert.bettertransformer:
            self.conversion = convert(model, ctx.cfg)
            record["applied"].append("bettertransformer")
            record["bettertransformer"] = self.conversion.record
        # automatic: what attention=sdpa (or fa*) means on Falcon, whose own attention reaches only SDPA's math
        # kernel, and on Bloom, whose ALiBi attention is eager-only in Transformers
        if model is not None and (fused := attention.convert(model, ctx.cfg)) is not None:
            self.fused_attention = fused
            record["applied"].append(fused.record["kind"])
            record[fused.record["kind"]] = fused.record
        record.update(ctx.backend.prepare())  # the backend's own: backend=onnxruntime exports to ONNX
        return ctx

    def reverse(self, ctx: RunContext) -> None:
        if self.fused_attention is not None:
            record = self.fused_attention.reverse(ctx.backend.model)
            ctx.section("convert")[record["kind"]] = record
            self.fused_attention = None
        if self.conversion is not None:
            ctx.section("convert")["bettertransformer"] = self.conversion.reverse(ctx.backend.model)
            self.conversion = None
