"""convert: model conversions (BetterTransformer), undone by `reverse`; then one profiled forward pass records
which attention implementation and SDPA kernel actually run (the `attention` section of results.json)."""

from __future__ import annotations

import logging

from runner.attention import probe
from runner.context import RunContext
from runner.convert.bettertransformer import FUSED_ENCODER, NATIVE_SDPA, Conversion, convert
from runner.errors import OptimizationNotApplied
from runner.models.inputs import token_counts
from runner.stages.base import Stage, stage

log = logging.getLogger(__name__)

RUNS_THE_MODEL = ("warmup", "infer", "compare")  # a pipeline without these never executes it: nothing to probe


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
        if hasattr(ctx.backend, "convert"):  # a backend's own conversion: backend=onnxruntime exports to ONNX
            record.update(ctx.backend.convert())
        if ctx.cfg.backend.name == "pytorch" and any(s in ctx.cfg.pipeline.stages for s in RUNS_THE_MODEL):
            record_attention(ctx, self.conversion)
        return ctx

    def reverse(self, ctx: RunContext) -> None:
        if self.conversion is not None:
            ctx.section("convert")["bettertransformer"] = self.conversion.reverse(ctx.backend.model)
            self.conversion = None


def record_attention(ctx: RunContext, conversion: Conversion | None) -> None:
    """Profile one forward pass and fail the run when what ran is not what the config asks for."""
    model = ctx.backend.model
    names = probe.profile_forward(ctx.backend, ctx.inputs)
    section = probe.summarize(names, ctx.cfg.attention, getattr(model.config, "_attn_implementation", None))
    kind = conversion.kind if conversion else None
    expected = "sdpa" if kind == NATIVE_SDPA else ctx.cfg.attention.implementation
    padded = token_counts(ctx.inputs)["padded_tokens"] > 0
    fused = kind == FUSED_ENCODER
    if fused:
        conversion.record["padding_skipped"] = padded and section["nested_tensors"]
        if padded and not conversion.record["skips_padding"]:
            log.warning("bettertransformer: an odd head count keeps PyTorch from skipping padding (layers still fuse)")
    expects_nested = fused and padded and conversion.record["skips_padding"]
    found = probe.problems(section, names, expected, fused, expects_nested)
    section["as_configured"] = not found
    ctx.record["attention"] = section
    log.info(
        "attention: %s ran (SDPA kernels: %s)",
        section["implementation"],
        ", ".join(section["sdpa_kernels"]) or "none",
    )
    if found:
        raise OptimizationNotApplied(f"attention={ctx.cfg.attention.name}: " + "; ".join(found))
