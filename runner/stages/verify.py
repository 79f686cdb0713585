"""verify: after the measured calls, one forward pass under the profiler shows which attention implementation
and SDPA kernel actually ran (the `attention` section of results.json); a run whose optimization did not
happen fails. It runs after `infer` so that the profiler cannot touch the measured calls."""

from __future__ import annotations

import logging

from runner.attention import probe
from runner.context import RunContext
from runner.convert.bettertransformer import FUSED_ENCODER, NATIVE_SDPA, Conversion
from runner.errors import OptimizationNotApplied
from runner.models.inputs import token_counts
from runner.record import Attention
from runner.stages.base import Stage, stage

log = logging.getLogger(__name__)


@stage("verify")
class Verify(Stage):
    def run(self, ctx: RunContext) -> RunContext:
        if ctx.cfg.backend.runs_torch_modules:  # the probe profiles PyTorch modules
            conversion = next((s.conversion for s in ctx.completed if s.name == "convert"), None)
            record_attention(ctx, conversion)
        return ctx


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
        conversion.note_padding_skipped(padded and section["nested_tensors"])
        if padded and not conversion.record["skips_padding"]:
            log.warning("bettertransformer: an odd head count keeps PyTorch from skipping padding (layers still fuse)")
    expects_nested = fused and padded and conversion.record["skips_padding"]
    found = probe.problems(section, names, expected, fused, expects_nested)
    section["as_configured"] = not found
    ctx.record.attention = Attention.from_dict(section)
    log.info(
        "attention: %s ran (SDPA kernels: %s)",
        section["implementation"],
        ", ".join(section["sdpa_kernels"]) or "none",
    )
    if found:
        raise OptimizationNotApplied(f"attention={ctx.cfg.attention.name}: " + "; ".join(found))
