"""Where a decode step's time goes: GPU kernels, or the GPU waiting for the host.

    python scripts/decode_profile.py [convert.compile=true] [model=llama] ...   (a CUDA GPU)
    python scripts/decode_profile.py hardware=cpu model=tiny-llama             (tries it on the CPU: no GPU figures)

The model is prepared by the runner's own load, convert and warmup stages (with `convert.compile=true`: the static
KV cache and the compiled, CUDA-graph decode step). Then `generate` runs under `torch.profiler` twice, for
`--short` and `--long` new tokens; the difference between the two, divided by the extra tokens, is one decode
step with the prompt and every fixed cost cancelled out:

- `wall_ms`: the host clock around `generate` (synchronized);
- `gpu_busy_ms`: the union of the intervals in which a kernel, copy or memset ran on the GPU;
- `gpu_idle_ms`: the rest, time in which the GPU waited for the host (Python, launches, synchronizations);
- `kernel_only_gbs`: the bytes one step must move (every weight and the KV cache, as in the record's roofline)
  over the busy time: the bandwidth the kernels reach, had the host never kept the GPU waiting.

With `wall_ms` close to `gpu_busy_ms` the kernels set the pace; with a large `gpu_idle_ms` the host does. The top
kernels of the long run say which kernels spend the busy time. Prints one JSON object.

`--defer-stop-check` (an experiment, not a runner option): `generate` reads `unfinished_sequences.max() == 0` on
the host after every step, which makes the host wait for the GPU before it can queue the next step. Transformers
5.2x has `DeferredStopCheck`, which reads that flag one step late, but turns it on for Apple's mps only ("we should
enable it for cuda if we observe perf gains"). This flag turns it on for CUDA too, to measure that gain.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch
from bench_context import device_name, prepared, run_config
from torch.profiler import ProfilerActivity, profile

from runner.config.model import Task
from runner.context import RunContext
from runner.pipeline_reverse import reverse_all
from runner.roofline.analysis import roofline
from runner.roofline.gpus import ceilings_for

DEFAULTS = [
    "model=llama",
    "model.weights=random",
    "hardware=cuda",
    "attention=sdpa",
    "scenario=generate",
    "scenario.batch_size=1",
    "scenario.sequence_length=128",
    "scenario.warmup_runs=2",
    "convert.compile=true",
    "compare.enabled=false",
]


def busy_us(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of [start, end) intervals."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end <= reach:
            continue
        total += end - max(start, reach)
        reach = end
    return total


def profiled_generate(ctx: RunContext, new_tokens: int) -> dict:
    cuda = ctx.device.type == "cuda"
    activities = [ProfilerActivity.CPU, ProfilerActivity.CUDA] if cuda else [ProfilerActivity.CPU]
    with profile(activities=activities) as prof:
        start = time.perf_counter()
        ctx.backend.generate(ctx.inputs, new_tokens, on_step=lambda: None)
        if cuda:
            torch.cuda.synchronize(ctx.device)
        wall = time.perf_counter() - start
    device_events = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    per_kernel: dict[str, list[float]] = defaultdict(list)
    for e in device_events:
        per_kernel[e.name].append(e.time_range.elapsed_us())
    return {
        "wall_ms": wall * 1e3,
        "gpu_busy_ms": busy_us([(e.time_range.start, e.time_range.end) for e in device_events]) / 1e3 if cuda else None,
        "kernels": per_kernel,
    }


def top_kernels(kernels: dict[str, list[float]], steps: int, count: int = 10) -> list[dict]:
    ranked = sorted(kernels.items(), key=lambda item: -sum(item[1]))[:count]
    return [
        {"name": name[:120], "calls": len(times), "total_ms": sum(times) / 1e3, "ms_per_step": sum(times) / 1e3 / steps}
        for name, times in ranked
    ]


def bytes_per_step(ctx: RunContext, new_tokens: int) -> float | None:
    """The record's own roofline figure: weights plus the KV cache at the mean context of the decode."""
    record = {
        "model": ctx.record.get("model", {}),
        "measurements": {
            "generate": {"per_token": {"mean": 1.0}, "prefill": {"mean": 1.0}},
            "tokens": {"new_tokens_per_row": new_tokens},
        },
    }
    section = roofline(
        ctx.backend.model,
        record,
        causal=ctx.cfg.model.task == Task.causal_lm,
        batch=ctx.cfg.scenario.batch_size,
        seq=ctx.cfg.scenario.sequence_length,
        device_name=None,
    )
    return section.get("decode", {}).get("bytes_per_token_step")


def defer_stop_check() -> str:
    """Let generate's deferred stop check run on CUDA as well as mps; returns what was done, or why not."""
    import transformers
    from transformers.generation import utils

    deferred = getattr(utils, "DeferredStopCheck", None)
    if deferred is None:
        raise SystemExit(f"--defer-stop-check: transformers {transformers.__version__} has no DeferredStopCheck")

    def is_supported(device, cache, cache_is_returned, is_assistant):
        if device.type not in ("mps", "cuda") or is_assistant:
            return False
        return cache is None or cache.is_croppable or not cache_is_returned

    deferred.is_supported = staticmethod(is_supported)
    return "transformers' DeferredStopCheck enabled on CUDA"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", type=int, default=16, help="new tokens of the short run (default 16)")
    parser.add_argument("--long", type=int, default=144, help="new tokens of the long run (default 144)")
    parser.add_argument("--defer-stop-check", action="store_true", help="read generate's stop flag a step late")
    args, overrides = parser.parse_known_args()
    deferred = defer_stop_check() if args.defer_stop_check else None
    if args.long <= args.short:
        raise SystemExit(f"--long ({args.long}) must be more than --short ({args.short})")
    run_cfg = run_config([*DEFAULTS, *overrides])
    if run_cfg.scenario.name != "generate" or run_cfg.backend.name != "pytorch":
        raise SystemExit("this profile needs scenario=generate and backend=pytorch")
    with tempfile.TemporaryDirectory() as run_dir:
        ctx = prepared(run_cfg, Path(run_dir))
        short, long = profiled_generate(ctx, args.short), profiled_generate(ctx, args.long)
        steps = args.long - args.short
        moved = bytes_per_step(ctx, (args.short + args.long) // 2)
        reverse_all(ctx)
    name = device_name(ctx)
    step: dict = {"wall_ms": (long["wall_ms"] - short["wall_ms"]) / steps}
    if long["gpu_busy_ms"] is not None:
        step["gpu_busy_ms"] = (long["gpu_busy_ms"] - short["gpu_busy_ms"]) / steps
        step["gpu_idle_ms"] = step["wall_ms"] - step["gpu_busy_ms"]
        step["gpu_busy_share"] = step["gpu_busy_ms"] / step["wall_ms"]
    ceilings = ceilings_for(name)
    bandwidth = run_cfg.roofline.bandwidth_gbs or (ceilings.bandwidth_gbs if ceilings else None)
    if moved:
        step["bytes"] = moved
        step["achieved_gbs"] = moved / step["wall_ms"] / 1e6
        if "gpu_busy_ms" in step:
            step["kernel_only_gbs"] = moved / step["gpu_busy_ms"] / 1e6
        if bandwidth:
            step["floor_ms"] = moved / bandwidth / 1e6
            step["share_of_bandwidth"] = step["achieved_gbs"] / bandwidth
            if "kernel_only_gbs" in step:
                step["kernel_only_share_of_bandwidth"] = step["kernel_only_gbs"] / bandwidth
    result = {
        "device": name,
        "versions": {"torch": torch.__version__, "transformers": __import__("transformers").__version__},
        "overrides": [*DEFAULTS, *overrides],
        "new_tokens": {"short": args.short, "long": args.long},
        "stop_check": deferred or "transformers' default (a host read of the stop flag after every step)",
        "bandwidth_gbs": bandwidth,
        "per_decode_step": step,
        "top_kernels_long_run": top_kernels(long["kernels"], args.long) if long["kernels"] else None,
        "note": None if long["gpu_busy_ms"] is not None else "no GPU: wall time only",
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
