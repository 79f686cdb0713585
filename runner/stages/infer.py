"""infer: the measured calls of the scenario, with peak memory over them and the roofline of the result."""

from __future__ import annotations

import torch

from runner import predictions
from runner.config.model import Task
from runner.context import RunContext
from runner.measure.memory import MemoryTracker
from runner.record import Measurements, Memory, Predictions, Roofline
from runner.roofline import gpus_in_use, roofline
from runner.scenarios import SCENARIOS
from runner.stages.base import Stage, stage


@stage("infer")
class Infer(Stage):
    def run(self, ctx: RunContext) -> RunContext:
        scenario = SCENARIOS.get(ctx.cfg.scenario.name)(ctx)
        memory = MemoryTracker(ctx.backend.devices())
        memory.start()
        ctx.record.measurements = Measurements.from_dict(scenario.measure())
        ctx.record.memory = Memory.from_dict(memory.stop())
        ctx.record.roofline = Roofline.from_dict(roofline_section(ctx))
        if (answer := predictions.predict(ctx)) is not None:  # after the measured calls: not timed
            ctx.record.predictions = Predictions.from_dict(answer)
        return ctx


def roofline_section(ctx: RunContext) -> dict:
    model = getattr(ctx.backend, "model", None)
    if not isinstance(model, torch.nn.Module):
        return {"skipped": f"backend {ctx.cfg.backend.name} exposes no PyTorch model to count FLOPs on"}
    cfg = ctx.cfg
    device_name = torch.cuda.get_device_name(ctx.device) if ctx.device.type == "cuda" else None
    return roofline(
        model,
        ctx.record,
        causal=cfg.model.task == Task.causal_lm,
        batch=cfg.scenario.batch_size,
        seq=cfg.scenario.sequence_length,
        device_name=device_name,
        peak_tflops=cfg.roofline.peak_tflops,
        bandwidth_gbs=cfg.roofline.bandwidth_gbs,
        gpus=gpus_in_use(cfg.hardware, ctx.backend.devices()),
    )
