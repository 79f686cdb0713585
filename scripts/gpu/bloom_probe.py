"""Bloom-3b shapes on one GPU, random bf16 weights: one forward pass at 4096 tokens for eager Bloom (Transformers'
only attention for it) and the runner's converted attention (runner/convert/bloom_attention.py: SDPA with ALiBi
as a float mask) with PyTorch's choice of kernel and each forced kernel (flash must fail: it takes no mask on CUDA).
Prints ms, speedup over eager, the SDPA kernel that ran, and agreement with eager (no padding, and left padding).

    python scripts/gpu/bloom_probe.py                 # ~1 min on an H200
    python scripts/gpu/bloom_probe.py --batches 1 4 --layers 30
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch.nn.attention import sdpa_kernel
from transformers import BloomConfig, BloomForCausalLM

sys.path.insert(0, str(Path(__file__).parent))  # the sibling probe's timing and profiler helpers
import falcon_probe  # noqa: E402

from runner.convert import bloom_attention  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--seq", type=int, default=4096)
    parser.add_argument("--layers", type=int, default=8, help="bloom-3b has 30")
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--device", default="cuda", help="cpu: a smoke test of this script (tiny --seq/--layers)")
    args = parser.parse_args()
    falcon_probe.DEVICE = args.device

    architecture = OmegaConf.to_container(OmegaConf.load(ROOT / "conf/model/bloom-3b.yaml").architecture)
    architecture["n_layer"] = args.layers
    torch.manual_seed(0)
    with torch.device(args.device):
        model = BloomForCausalLM._from_config(BloomConfig(**architecture), attn_implementation="eager")
    model = model.to(torch.bfloat16).eval()
    print(f"device {args.device}, torch {torch.__version__}, bloom-3b shapes: {args.layers} layers, 32 heads of 80")

    ids = torch.randint(0, model.config.vocab_size, (2, args.seq), device=args.device)
    mask = torch.ones_like(ids)
    mask[1, : args.seq // 4] = 0  # left padding on the second row
    real = mask.bool()
    # Eager bf16 Bloom is no exact reference at long lengths: it adds ALiBi (slope x key position, up to thousands)
    # to the scores and rounds the sum to bf16, while SDPA adds the bias in its float32 accumulator. Both bf16
    # paths are compared with the same weights in float32 (bf16 -> float32 -> bf16 is exact).
    with torch.no_grad():
        reference = model.float()(ids, attention_mask=mask).logits.float()
        model.to(torch.bfloat16)
        eager = model(ids, attention_mask=mask).logits.float()
        conversion = bloom_attention.convert(model)
        got = model(ids, attention_mask=mask).logits.float()

    def against(output: torch.Tensor, to: torch.Tensor) -> str:
        relative = ((output - to)[real].abs().max() / to[real].abs().max()).item()
        top1 = (output.argmax(-1) == to.argmax(-1))[real].float().mean().item()
        return f"relative max diff {relative:.3g}, top-1 {top1:.4f}"

    print("batch 2, one row left-padded, padded positions left out:")
    print(f"  eager bf16     vs float32: {against(eager, reference)}")
    print(f"  converted bf16 vs float32: {against(got, reference)}")
    print(f"  converted bf16 vs eager bf16: {against(got, eager)} (bf16 tolerance 5e-2)")
    del got, eager, reference
    conversion.reverse(model)

    print(f"{'variant':<28}{'batch':>6}{'ms':>10}{'x eager':>9}  kernels")
    eager_ms: dict[int, float] = {}

    def run(variant: str, batch: int, context=contextlib.nullcontext) -> None:
        ids = torch.randint(0, model.config.vocab_size, (batch, args.seq), device=args.device)
        try:
            with context():
                ms = falcon_probe.time_forward(model, ids, args.iterations)
                ran = falcon_probe.kernels(model, ids)
        except (torch.OutOfMemoryError, RuntimeError) as error:
            print(f"{variant:<28}{batch:>6}  failed: {type(error).__name__}: {str(error).splitlines()[0][:90]}")
            if args.device == "cuda":
                torch.cuda.empty_cache()
            return
        if variant == "eager":
            eager_ms[batch] = ms
        speedup = f"{eager_ms[batch] / ms:.2f}" if batch in eager_ms else "-"  # "-": eager failed (out of memory)
        print(f"{variant:<28}{batch:>6}{ms:>10.1f}{speedup:>9}  {ran}", flush=True)

    for batch in args.batches:
        run("eager", batch)
    conversion = bloom_attention.convert(model)
    for batch in args.batches:
        run("sdpa converted", batch)
    for name, backend in falcon_probe.FORCED.items():
        for batch in args.batches:
            run(f"sdpa_{name} converted", batch, lambda backend=backend: sdpa_kernel([backend]))
    print(f"reversed: {conversion.reverse(model)['reversed']}")


if __name__ == "__main__":
    main()
