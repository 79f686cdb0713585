"""What the NVML sampler costs a host-bound decode: greedy generation timed with the sampler on against off.

    python scripts/nvml_cost.py [--rounds 8] [model=tiny-llama] [scenario.new_tokens=128] ...   (a CUDA GPU)
    python scripts/nvml_cost.py hardware=cpu --rounds 2 scenario.new_tokens=8 ...               (tries it; no NVML)

A small model in bf16 with batch 1 decodes host-bound: the GPU waits on the Python loop that launches each step's
kernels, so a sampler thread that takes the GIL shows up in full in the per-token time. The model, inputs and
warmup are the runner's own (load, convert, warmup stages); each block is the generate scenario's measured calls,
plain or inside `NvmlMonitor.start()`/`stop()` exactly as the infer stage runs them (runner/measure/memory.py).
Blocks alternate off-on-on-off-..., so drift over the session falls on both sides; the verdict is the median over
the rounds of on / off of the per-token mean. The sampler is expected to cost under 1 %.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import torch
from bench_context import device_name, prepared, run_config

from runner.context import RunContext
from runner.measure.nvml import NvmlMonitor
from runner.pipeline import reverse_all
from runner.scenarios import SCENARIOS

DEFAULTS = [
    "model=tiny-llama",
    "model.weights=random",
    "model.dtype=bfloat16",
    "hardware=cuda",
    "attention=sdpa",
    "scenario=generate",
    "scenario.batch_size=1",
    "scenario.sequence_length=32",
    "scenario.new_tokens=128",
    "scenario.warmup_runs=5",
    "scenario.iterations=10",
    "compare.enabled=false",
]


def decode_block(ctx: RunContext, monitor: NvmlMonitor | None) -> dict:
    """One block of measured generate calls; the per-token mean, and how many samples the sampler took."""
    scenario = SCENARIOS.get("generate")(ctx)
    if monitor is not None:
        monitor.start()
    generate = scenario.measure()["generate"]
    report = monitor.stop() if monitor is not None else None
    clocks = report["devices"][f"cuda:{ctx.device.index or 0}"]["sm_clock_mhz"] if report else None
    return {
        "per_token_ms": generate["per_token"]["mean"] * 1e3,
        "end_to_end_ms": generate["end_to_end"]["mean"] * 1e3,
        "samples": clocks["samples"] if clocks else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8, help="blocks of each kind (default 8)")
    args, overrides = parser.parse_known_args()
    run_cfg = run_config([*DEFAULTS, *overrides])
    if run_cfg.scenario.name != "generate" or run_cfg.scenario.new_tokens < 2:
        raise SystemExit("this benchmark times decoding: scenario=generate with scenario.new_tokens >= 2")
    if args.rounds < 1:
        raise SystemExit(f"--rounds {args.rounds}: at least 1")
    with tempfile.TemporaryDirectory() as run_dir:
        ctx = prepared(run_cfg, Path(run_dir))
        monitor = NvmlMonitor([ctx.device.index or 0]) if ctx.device.type == "cuda" else None
        reason = None if monitor is not None and monitor.available else (monitor.reason if monitor else "no GPU")
        sampler = monitor if reason is None else None  # without NVML both sides run plain: the ratio shows noise
        blocks = []
        for r in range(args.rounds):
            for kind in ("off", "on") if r % 2 == 0 else ("on", "off"):
                block = decode_block(ctx, sampler if kind == "on" else None)
                blocks.append({"round": r, "sampler": kind, **block})
        reverse_all(ctx)
    per_round = {kind: [b["per_token_ms"] for b in blocks if b["sampler"] == kind] for kind in ("off", "on")}
    ratios = [on / off for on, off in zip(per_round["on"], per_round["off"], strict=True)]
    cost = statistics.median(ratios) - 1
    result = {
        "device": device_name(ctx),
        "versions": {"torch": torch.__version__, "transformers": __import__("transformers").__version__},
        "overrides": [*DEFAULTS, *overrides],
        "nvml": reason or "sampled",
        "sampling_interval_s": monitor.interval_s if monitor is not None else None,
        "blocks": blocks,
        "per_token_ms": {kind: statistics.fmean(values) for kind, values in per_round.items()},
        "on_over_off_per_round": ratios,
        "cost": cost,
        "under_1_percent": cost < 0.01,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
