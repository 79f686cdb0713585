"""convert: model conversions (BetterTransformer, Falcon's fused attention, Bloom's ALiBi through SDPA, Llama's fused
projections), undone by `reverse` in the opposite order, and the record of a backend's own export. This stage alone
writes the `convert` section of the record (`write`)."""

from __future__ import annotations

import logging
from typing import Any

from runner.context import RunContext
from runner.convert import attention, fused_projections
from runner.convert.bettertransformer import Conversion, convert
from runner.fused_decode import decoder as fused_decode
from runner.fused_decode.support import build_decoder
from runner.quant import is_quantized
from runner.quant.base import CompileReady, method_of
from runner.record import Convert as ConvertSection
from runner.stages.base import Stage, stage

log = logging.getLogger(__name__)


@stage("convert")
class Convert(Stage):
    conversion: Conversion | None = None
    fused_attention: Any = None  # a conversion's FusedAttention (runner/convert/attention.py)
    fused_projections: fused_projections.FusedProjections | None = None  # convert.fuse_projections
    compile_ready: CompileReady | None = None  # the quantization method's preparation for convert.compile

    def run(self, ctx: RunContext) -> RunContext:
        model = getattr(ctx.backend, "model", None)
        self.records: dict[str, dict[str, Any]] = {}  # each conversion's own record, in the order applied
        if ctx.cfg.convert.bettertransformer:
            self.conversion = convert(model, ctx.cfg)
            self.records["bettertransformer"] = self.conversion.record
        # automatic: what attention=sdpa (or fa*) means on Falcon, whose own attention reaches only SDPA's math
        # kernel, and on Bloom, whose ALiBi attention is eager-only in Transformers
        if model is not None and (fused := attention.convert(model, ctx.cfg)) is not None:
            self.fused_attention = fused
            self.records[fused.record["kind"]] = fused.record
        if model is not None and fused_projections.wanted(ctx.cfg):
            automatic = ctx.cfg.convert.fuse_projections is None and not ctx.cfg.convert.fused_decode
            if automatic and (why := fused_projections.why_not(model)) is not None:  # =true raises in convert()
                log.info("convert.fuse_projections (automatic) left the model unfused: %s", why)
            else:
                self.fused_projections = fused_projections.convert(model)
                self.fused_projections.record["chosen_by"] = fused_projections.chosen_by(ctx.cfg)
                self.records[fused_projections.KIND] = self.fused_projections.record
        if model is not None and ctx.cfg.convert.fused_decode:
            ctx.backend.fused_decoder = build_decoder(model)
            self.records[fused_decode.KIND] = ctx.backend.fused_decoder.record
        if model is not None and (ready := self._before_compile(model, ctx)) is not None:
            self.compile_ready = ready
            self.records[ready.record["kind"]] = ready.record
        self.backend_record = ctx.backend.convert_record()  # backend=onnxruntime: its export
        self.write(ctx)
        return ctx

    @staticmethod
    def _before_compile(model, ctx: RunContext) -> CompileReady | None:
        cfg = ctx.cfg
        if not (cfg.convert.compile and cfg.convert.compile_options.unwrap_subclasses and is_quantized(cfg.quant)):
            return None
        return method_of(cfg.quant).before_compile(model)

    def reverse(self, ctx: RunContext) -> None:
        if getattr(ctx.backend, "fused_decoder", None) is not None:  # its buffers go; the model's weights stay
            self.records[fused_decode.KIND]["released"] = True
            ctx.backend.fused_decoder = None
        if self.compile_ready is not None:
            record = self.compile_ready.reverse(ctx.backend.model)
            self.records[record["kind"]] = record
            self.compile_ready = None
        if self.fused_projections is not None:
            self.records[fused_projections.KIND] = self.fused_projections.reverse(ctx.backend.model)
            self.fused_projections = None
        if self.fused_attention is not None:
            record = self.fused_attention.reverse(ctx.backend.model)
            self.records[record["kind"]] = record
            self.fused_attention = None
        if self.conversion is not None:
            self.records["bettertransformer"] = self.conversion.reverse(ctx.backend.model)
            self.conversion = None
        self.write(ctx)  # after the measured calls: what the conversions and torch.compile's first call added

    def write(self, ctx: RunContext) -> None:
        """The `convert` section, whole, from this stage's conversions and the backend's account of itself."""
        section = ConvertSection.from_dict(
            {"applied": list(self.records), **{k: dict(v) for k, v in self.records.items()}, **self.backend_record}
        )
        if (compiled := ctx.backend.compiled) is not None:
            section.compile = dict(compiled)
        ctx.record.convert = section
