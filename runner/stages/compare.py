"""compare: run the reference model (eager, unquantized, unconverted, PyTorch) on the same inputs and
record how far this run's outputs are from it."""

from __future__ import annotations

import logging

from runner.agreement import compare_outputs, reference_changes, tolerance_for
from runner.config.model import Task
from runner.context import RunContext
from runner.record import Agreement
from runner.stages.base import Stage, stage

log = logging.getLogger(__name__)


@stage("compare")
class Compare(Stage):
    uses_reference = True

    def run(self, ctx: RunContext) -> RunContext:
        changes = reference_changes(ctx.cfg)
        if not ctx.cfg.compare.enabled:
            ctx.record.agreement = Agreement(skipped="compare.enabled=false")
            return ctx
        if not changes:
            ctx.record.agreement = Agreement(skipped="this run is the reference")
            return ctx
        with ctx.backend.inference_context():
            output = ctx.backend.forward(ctx.inputs).float().cpu()
        reference = ctx.reference()  # loaded once per job, shared with the quality stage
        where = reference.input_device()
        expected = reference.forward({k: v.to(where) for k, v in ctx.inputs.items()}).float().cpu()
        result = compare_outputs(
            output,
            expected,
            ctx.inputs.get("attention_mask"),
            is_logits=ctx.cfg.model.task != Task.feature_extraction,
            tolerance=tolerance_for(ctx.cfg),
        )
        result["against"] = "eager, unquantized, unconverted PyTorch model"
        result["changes"] = changes
        ctx.record.agreement = Agreement.from_dict(result)
        if not result["agrees"]:
            log.warning(
                "outputs disagree with the reference: relative max diff %.3g > tolerance %.3g",
                result["relative_max_diff"],
                result["tolerance"],
            )
        return ctx
