"""Where a decode step's time goes: GPU kernels, or the GPU waiting for the host.

    python scripts/decode_profile.py [convert.compile=true] [model=llama] ...   (a CUDA GPU)
    python scripts/decode_profile.py hardware=cpu model=tiny-llama             (tries it on the CPU: no GPU figures)

The model is prepared by the runner's own load, convert and warmup stages (with `convert.compile=true`: the static
KV cache and the compiled, CUDA-graph decode step), warmed for `--long` new tokens so that neither run below
meets a new cache size (a new size recompiles). `generate` then runs for `--short` and for `--long` new tokens;
the difference between the two, divided by the extra tokens, is one decode step with the prompt and every fixed
cost cancelled out:

- `wall_ms`: the host clock around `generate` (synchronized), the median of `--repeats` runs without the
  profiler, which would slow the host;
- `gpu_busy_ms`: from one more run of each under `torch.profiler` (CUDA activity only), the union of the intervals
  in which a kernel, copy or memset ran on the GPU (annotations that span many kernels do not count);
- `gpu_idle_ms`: the rest, time in which the GPU waited for the host (Python, launches, synchronizations);
- `kernel_only_gbs`: the bytes one step must move (every weight and the KV cache, as in the record's roofline)
  over the busy time: the bandwidth the kernels reach, had the host never kept the GPU waiting.

With `wall_ms` close to `gpu_busy_ms` the kernels set the pace; with a large `gpu_idle_ms` the host does. The top
kernels of the long run say which kernels spend the busy time, with their launches per step and time per launch
(a kernel launched 32 times a step runs once a layer: its bytes are one layer's matrices it reads).
`host_per_step_ms` says where the host's share goes: the host time of each part of transformers' generate loop per
step (the inputs' preparation, the model call, which with CUDA graphs only launches work, the logits processors, the
keyword update, the stopping criteria, and the stop check, where the host waits for the GPU: near zero when the host
paces the steps), from one more short and long run with each part timed. Prints one JSON object.

`--defer-stop-check` (an experiment, not a runner option): `generate` reads `unfinished_sequences.max() == 0` on
the host after every step, which makes the host wait for the GPU before it can queue the next step. Transformers
5.2x has `DeferredStopCheck`, which reads that flag one step late, but turns it on for Apple's mps only ("we should
enable it for cuda if we observe perf gains"). This flag turns it on for CUDA too, to measure that gain.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch
from bench_context import device_name, prepared, run_config
from torch.profiler import ProfilerActivity, profile

from runner.config.model import Task
from runner.context import RunContext
from runner.pipeline import reverse_all
from runner.roofline.analysis import ceilings, decode_bytes
from runner.roofline.cost import Shape

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


def wall_ms(ctx: RunContext, new_tokens: int, repeats: int) -> float:
    times = []
    with ctx.backend.inference_context():
        for _ in range(repeats):
            ctx.backend.clock().synchronize()
            start = time.perf_counter()
            ctx.backend.generate(ctx.inputs, new_tokens, on_step=lambda: None)
            ctx.backend.clock().synchronize()
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def is_device_work(event) -> bool:
    """A kernel, copy or memset on a GPU; not an annotation (e.g. a compiled graph's span over its kernels)."""
    if event.device_type != torch.autograd.DeviceType.CUDA:
        return False
    kind = getattr(event, "activity_type", None)  # newer torch names the activity
    if kind:
        return str(kind).lower() in ("kernel", "gpu_memcpy", "gpu_memset")
    return not getattr(event, "is_user_annotation", False) and not event.name.startswith("##")


def device_work(events) -> dict:
    """Busy milliseconds (overlaps counted once), each kernel's total milliseconds and its number of launches."""
    work = [e for e in events if is_device_work(e)]
    per_kernel: dict[str, float] = defaultdict(float)
    launches: dict[str, int] = defaultdict(int)
    for e in work:
        per_kernel[e.name] += e.time_range.elapsed_us() / 1e3
        launches[e.name] += 1
    busy = busy_us([(e.time_range.start, e.time_range.end) for e in work]) / 1e3
    return {"busy_ms": busy, "kernels": per_kernel, "launches": launches}


def profiled(ctx: RunContext, new_tokens: int) -> dict:
    with ctx.backend.inference_context(), profile(activities=[ProfilerActivity.CUDA]) as prof:
        ctx.backend.generate(ctx.inputs, new_tokens, on_step=lambda: None)
        ctx.backend.clock().synchronize()
    work = device_work(prof.events())
    if not work["kernels"]:  # CUPTI can miss CUDA-graph kernels (fixed in CUDA 13.1's CUPTI, NVIDIA says)
        raise SystemExit(f"the profiler recorded no GPU kernels in generate({new_tokens} tokens): no busy time")
    return work


def host_parts(model) -> dict[str, tuple[object, str]]:
    """The parts of transformers' generate loop a step passes through: name -> (owner, attribute) to time."""
    from transformers.generation import logits_process, stopping_criteria
    from transformers.generation import utils as generation

    parts = {
        "prepare_inputs": (model, "prepare_inputs_for_generation"),
        "model_call": (model, "_compiled_call" if getattr(model, "_compiled_call", None) is not None else "__call__"),
        "logits_processors": (logits_process.LogitsProcessorList, "__call__"),
        "update_model_kwargs": (model, "_update_model_kwargs_for_generation"),
        "stopping_criteria": (stopping_criteria.StoppingCriteriaList, "__call__"),
    }
    for name in ("StopCheck", "DeferredStopCheck"):  # transformers 5.17 and later
        if hasattr(generation, name):
            parts[f"stop_check ({name})"] = (getattr(generation, name), "__call__")
    return parts


@contextlib.contextmanager
def timing(parts: dict[str, tuple[object, str]], spent: dict[str, float]):
    """Within the block, each part adds its host time (perf_counter around the call) to `spent`."""
    originals = {name: getattr(owner, attribute) for name, (owner, attribute) in parts.items()}
    # an instance's own attribute (the compiled call) goes back as it was; a method read through the class goes
    own = {name for name, (owner, attribute) in parts.items() if attribute in vars(owner)}
    patched = []
    try:
        for name, (owner, attribute) in parts.items():

            def timed(*args, _original=originals[name], _name=name, **kwargs):
                start = time.perf_counter()
                try:
                    return _original(*args, **kwargs)
                finally:
                    spent[_name] += time.perf_counter() - start

            setattr(owner, attribute, functools.wraps(originals[name])(timed))
            patched.append(name)
        yield
    finally:
        for name in patched:
            owner, attribute = parts[name]
            if name in own:
                setattr(owner, attribute, originals[name])
            else:
                delattr(owner, attribute)


def host_per_step(ctx: RunContext, short: int, long: int, repeats: int) -> dict[str, float]:
    """Host milliseconds per decode step in each part of generate's loop, and the rest of the loop: the difference
    between the fastest of `repeats` timed runs of each length, over the extra tokens."""
    totals = {}
    for n in (short, long):
        runs = []
        for _ in range(repeats):
            spent: dict[str, float] = defaultdict(float)
            with timing(host_parts(ctx.backend.model), spent), ctx.backend.inference_context():
                ctx.backend.clock().synchronize()
                start = time.perf_counter()
                ctx.backend.generate(ctx.inputs, n, on_step=lambda: None)
                ctx.backend.clock().synchronize()
                runs.append({"whole loop": time.perf_counter() - start, **spent})
        totals[n] = min(runs, key=lambda run: run["whole loop"])
    steps = long - short
    per = {name: per_step(totals[short].get(name, 0.0), value, steps) * 1e3 for name, value in totals[long].items()}
    per["rest of the loop"] = per["whole loop"] - sum(v for k, v in per.items() if k != "whole loop")
    return per


def top_kernels(short: dict, long: dict, steps: int, count: int = 12) -> list[dict]:
    """The kernels that spend a decode step's busy time: long run minus short run, per extra token. With the launch
    counts, each kernel's time per launch: which of a layer's matrices a kernel reads, and so its bandwidth.
    count=0 lists every kernel."""
    per_step = {name: (total - short["kernels"].get(name, 0.0)) / steps for name, total in long["kernels"].items()}
    ranked = sorted(per_step.items(), key=lambda item: -item[1])[: count or None]
    top = []
    for name, ms in ranked:
        launches = (long["launches"][name] - short["launches"].get(name, 0)) / steps
        per_launch = ms * 1e3 / launches if launches > 0 else None
        top.append({"name": name[:120], "ms_per_step": ms, "launches_per_step": launches, "us_per_launch": per_launch})
    return top


def defer_stop_check() -> str:
    """Let generate's deferred stop check run on CUDA as it does on mps; returns what was done."""
    import transformers
    from transformers.generation import utils

    deferred = getattr(utils, "DeferredStopCheck", None)
    if deferred is None:
        raise SystemExit(f"--defer-stop-check: transformers {transformers.__version__} has no DeferredStopCheck")
    original = deferred.is_supported

    def is_supported(device, *args, **kwargs):  # transformers' own test, with a CUDA device taken for mps
        return original(torch.device("mps") if device.type == "cuda" else device, *args, **kwargs)

    deferred.is_supported = staticmethod(is_supported)
    return "transformers' DeferredStopCheck enabled on CUDA"


def per_step(short: float, long: float, steps: int) -> float:
    return (long - short) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", type=int, default=16, help="new tokens of the short run (default 16)")
    parser.add_argument("--long", type=int, default=144, help="new tokens of the long run (default 144)")
    parser.add_argument("--repeats", type=int, default=3, help="unprofiled runs of each, for the wall time")
    parser.add_argument("--defer-stop-check", action="store_true", help="read generate's stop flag a step late")
    parser.add_argument("--kernels", type=int, default=12, help="kernels listed, longest first (0: all; default 12)")
    args, overrides = parser.parse_known_args()
    if args.long <= args.short or args.short < 1 or args.repeats < 1 or args.kernels < 0:
        parser.error(  # exits 2, as python -m runner does for bad input
            f"need 1 <= --short < --long, --repeats >= 1, --kernels >= 0; "
            f"got {args.short}, {args.long}, {args.repeats}, {args.kernels}"
        )
    deferred = defer_stop_check() if args.defer_stop_check else None
    # warmup (and the static cache) at the long run's length: a run that needs a longer cache would recompile
    composed = [*DEFAULTS, *overrides, f"scenario.new_tokens={args.long}"]
    run_cfg = run_config(composed)
    if run_cfg.scenario.name != "generate" or run_cfg.backend.name != "pytorch":
        raise SystemExit("this profile needs scenario=generate and backend=pytorch")
    steps = args.long - args.short
    with tempfile.TemporaryDirectory() as run_dir:
        ctx = prepared(run_cfg, Path(run_dir))
        name = device_name(ctx)
        step: dict = {"wall_ms": per_step(*(wall_ms(ctx, n, args.repeats) for n in (args.short, args.long)), steps)}
        timed = step["wall_ms"] > 0  # else the runs varied more than the extra tokens cost: no rate to derive
        if not timed:
            step["warning"] = "the long run was not slower than the short one: raise --long or --repeats"
        on_gpu = ctx.device.type == "cuda"
        if on_gpu:
            profiled(ctx, args.short)  # the first profiled session pays CUPTI's start-up: not a measured one
            short, long = profiled(ctx, args.short), profiled(ctx, args.long)
            step["gpu_busy_ms"] = per_step(short["busy_ms"], long["busy_ms"], steps)
            step["gpu_idle_ms"] = step["wall_ms"] - step["gpu_busy_ms"]
            if timed:
                step["gpu_busy_share"] = step["gpu_busy_ms"] / step["wall_ms"]
                if not 0 < step["gpu_busy_ms"] <= step["wall_ms"]:
                    step["warning"] = "busy time outside (0, wall]: the profile missed kernels, or runs varied a lot"
        step["host_per_step_ms"] = host_per_step(ctx, args.short, args.long, args.repeats)
        # the steps measured run from context prompt+short to prompt+long: their mean is prompt+(short+long)/2,
        # which decode_bytes gives for short+long new tokens
        model = ctx.backend.model
        shape = Shape.of(model, run_cfg.model.task == Task.causal_lm)
        weights = ctx.record.footprint_bytes() or 0
        scenario = run_cfg.scenario
        moved = decode_bytes(
            model, shape, weights, scenario.batch_size, scenario.sequence_length, args.short + args.long
        )
        reverse_all(ctx)
    bandwidth = ceilings(name, bandwidth_gbs=run_cfg.roofline.bandwidth_gbs)["bandwidth_gbs"]
    step["bytes"] = moved
    if timed:
        step["achieved_gbs"] = moved / step["wall_ms"] / 1e6
    if step.get("gpu_busy_ms", 0) > 0:
        step["kernel_only_gbs"] = moved / step["gpu_busy_ms"] / 1e6
    if bandwidth:
        step["floor_ms"] = moved / bandwidth / 1e6
        for rate, share in (
            ("achieved_gbs", "share_of_bandwidth"),
            ("kernel_only_gbs", "kernel_only_share_of_bandwidth"),
        ):
            if rate in step:
                step[share] = step[rate] / bandwidth
    result = {
        "device": name,
        "versions": {"torch": torch.__version__, "transformers": __import__("transformers").__version__},
        "overrides": composed,
        "new_tokens": {"short": args.short, "long": args.long, "wall_time_repeats": args.repeats},
        "stop_check": deferred or "transformers' default (a host read of the stop flag after every step)",
        "bandwidth_gbs": bandwidth,
        "per_decode_step": step,
        "top_kernels_per_step": top_kernels(short, long, steps, args.kernels) if on_gpu else None,
        "note": None if on_gpu else "no GPU: wall time only",
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
