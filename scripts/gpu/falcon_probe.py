"""Falcon-7b shapes on one GPU, random bf16 weights: one forward pass at 4096 tokens, batch 1 and 4, for eager,
Transformers' own `sdpa` (math kernel), and the runner's converted attention (runner/convert/falcon_attention.py)
with PyTorch's choice of kernel, each forced kernel, and FlashAttention-4 (the converted forward calls Transformers'
flash_attention_4 function, which Transformers 5.17's Falcon class refuses at load; skipped without flash_attn.cute).
Prints ms, TFLOP/s, share of the dense bf16 peak, the
speedup over eager, which SDPA kernel ran (from the profiler, as the runner's attention probe reads it), and the
converted model's agreement with eager at batch 1.

    python scripts/gpu/falcon_probe.py                       # ~1-2 min on an H200
    python scripts/gpu/falcon_probe.py --batches 1 4 8 16 --layers 8
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections import Counter
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.profiler import ProfilerActivity, profile
from transformers import FalconConfig, FalconForCausalLM

from runner.attention.probe import SDPA_KERNEL_OPS
from runner.convert import falcon_attention
from runner.roofline.cost import Shape, forward_flops
from runner.roofline.gpus import ceilings_for

ROOT = Path(__file__).resolve().parents[2]
DEVICE = "cuda"
FORCED = {
    "flash": SDPBackend.FLASH_ATTENTION,
    "cudnn": SDPBackend.CUDNN_ATTENTION,
    "efficient": SDPBackend.EFFICIENT_ATTENTION,
}


def build(layers: int | None) -> FalconForCausalLM:
    architecture = OmegaConf.to_container(OmegaConf.load(ROOT / "conf/model/falcon.yaml").architecture)
    if layers:
        architecture["num_hidden_layers"] = layers
    config = FalconConfig(**architecture)
    torch.manual_seed(0)
    with torch.device(DEVICE):
        model = FalconForCausalLM._from_config(config, attn_implementation="sdpa", dtype=torch.bfloat16)
    return model.eval()


def kernels(model, ids) -> str:
    with profile(activities=[ProfilerActivity.CPU]) as prof, torch.no_grad():
        model(ids)
    synchronize()
    calls = Counter(SDPA_KERNEL_OPS[e.name] for e in prof.events() if e.name in SDPA_KERNEL_OPS)
    return ",".join(f"{k}x{n}" for k, n in calls.items()) or "no SDPA op (eager, or FlashAttention's kernel)"


def synchronize() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def time_forward(model, ids, iterations: int) -> float:
    """Median ms of `iterations` forward passes after one warmup, synchronized before each clock read."""
    with torch.no_grad():
        model(ids)
        times = []
        for _ in range(iterations):
            synchronize()
            start = time.perf_counter()
            model(ids)
            synchronize()
            times.append(1e3 * (time.perf_counter() - start))
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--seq", type=int, default=4096)
    parser.add_argument("--layers", type=int, default=None, help="fewer layers than falcon-7b's 32 (faster)")
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--device", default="cuda", help="cpu: a smoke test of this script (tiny --seq/--layers)")
    args = parser.parse_args()
    global DEVICE
    DEVICE = args.device

    model = build(args.layers)
    shape = Shape.of(model, causal=True)
    name = torch.cuda.get_device_name(0) if DEVICE == "cuda" else DEVICE
    ceilings = ceilings_for(name)
    peak = ceilings.peak_tflops if ceilings else None
    print(f"device {name}, torch {torch.__version__}, dense bf16 peak {peak} TFLOP/s")
    print(f"falcon-7b shapes: {shape.layers} layers, 71 query heads, 1 key/value head, seq {args.seq}")
    print(f"{'variant':<28}{'batch':>6}{'ms':>10}{'TFLOP/s':>10}{'% peak':>8}{'x eager':>9}  kernels")

    def run(variant: str, batch: int, eager_ms: dict, context=contextlib.nullcontext) -> None:
        ids = torch.randint(0, model.config.vocab_size, (batch, args.seq), device=DEVICE)
        try:
            with context():
                ms = time_forward(model, ids, args.iterations)
                ran = kernels(model, ids)
        except (torch.OutOfMemoryError, RuntimeError) as error:
            print(f"{variant:<28}{batch:>6}  failed: {type(error).__name__}: {str(error).splitlines()[0][:90]}")
            if DEVICE == "cuda":
                torch.cuda.empty_cache()
            return
        tflops = forward_flops(shape, batch, args.seq) / (ms / 1e3) / 1e12
        share = f"{100 * tflops / peak:.1f}" if peak else "?"
        if variant == "eager":
            eager_ms[batch] = ms
        speedup = f"{eager_ms[batch] / ms:.2f}" if batch in eager_ms else "-"  # "-": eager failed (out of memory)
        print(f"{variant:<28}{batch:>6}{ms:>10.1f}{tflops:>10.1f}{share:>8}{speedup:>9}  {ran}", flush=True)

    eager_ms: dict[int, float] = {}
    ids = torch.randint(0, model.config.vocab_size, (1, args.seq), device=DEVICE)
    model.config._attn_implementation = "eager"
    with torch.no_grad():
        reference = model(ids).logits.float()
    for batch in args.batches:
        run("eager", batch, eager_ms)
    model.config._attn_implementation = "sdpa"
    for batch in args.batches:
        run("sdpa (transformers' own)", batch, eager_ms)

    conversion = falcon_attention.convert(model)
    with torch.no_grad():
        got = model(ids).logits.float()
    relative = ((got - reference).abs().max() / reference.abs().max()).item()
    top1 = (got.argmax(-1) == reference.argmax(-1)).float().mean().item()
    print(f"converted vs eager, batch 1: relative max diff {relative:.3g} (bf16 tolerance 5e-2), top-1 {top1:.4f}")
    del got, reference
    for batch in args.batches:
        run("sdpa converted", batch, eager_ms)
    for name, backend in FORCED.items():
        for batch in args.batches:
            run(f"sdpa_{name} converted", batch, eager_ms, lambda backend=backend: sdpa_kernel([backend]))
    t0 = time.perf_counter()
    conversion.reverse(model)
    print(f"reversed in {1e3 * (time.perf_counter() - t0):.1f} ms: {conversion.record['reversed']}")
    fa4_rows(model, ids, args, run, eager_ms)


def fa4_rows(model, ids, args, run, eager_ms) -> None:
    """The converted attention on FlashAttention-4: agreement with eager at batch 1, then the timed rows."""
    try:
        import flash_attn.cute  # noqa: F401
    except ImportError as error:
        print(f"fa4 converted: skipped ({error}; pip install flash-attn-4)")
        return
    model.config._attn_implementation = "eager"
    with torch.no_grad():
        reference = model(ids).logits.float()
    model.config._attn_implementation = "sdpa"  # what the runner loads Falcon with for attention=fa4
    conversion = falcon_attention.convert(model, "flash_attention_4")
    try:
        with torch.no_grad():
            got = model(ids).logits.float()
        relative = ((got - reference).abs().max() / reference.abs().max()).item()
        top1 = (got.argmax(-1) == reference.argmax(-1)).float().mean().item()
        print(
            f"fa4 converted vs eager, batch 1: relative max diff {relative:.3g} (bf16 tolerance 5e-2), top-1 {top1:.4f}"
        )
        del got, reference
        for batch in args.batches:
            run("fa4 converted", batch, eager_ms)
    finally:
        conversion.reverse(model)


if __name__ == "__main__":
    main()
