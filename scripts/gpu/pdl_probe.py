"""Could the bf16 decode step's matrix-vector kernels read faster if each started loading its weights before the
kernel in front of it has finished? A probe for issue 12's bf16 target (docs/benchmarks.md §6n: the Linear kernels
read 79 % of the H200's bandwidth inside the step, isolated shapes up to 93 %).

A weight does not depend on the previous kernel; only the input vector does. With Hopper's programmatic dependent
launch (PDL) a kernel may start while the one before it drains: each program here signals its dependents at once,
loads its first weight tile (all of its rows' weights when BLOCK_K covers the input), and only then waits for the
previous kernel (`griddepcontrol.wait`) before it reads the input vector. CUTLASS's example 63 does this for GEMMs.
Inductor's own PDL option (`triton.enable_pdl`, §6n: -1 %) waits before the reduction's loop, so its kernels never
read early.

The workload: the 7B llama step's Linear layers as a chain of 32 layers with weights of their own (12.95 GB, far
beyond the 60 MB L2), each layer q/k/v (12288 x 4096) -> o_proj (4096 x 4096, on the v part: a stand-in for the
attention, plus the residual) -> gate/up (22016 x 4096) -> SiLU(gate) * up -> down (4096 x 11008, plus the residual).
Variants, each captured as one CUDA graph and replayed:
- inductor: the layer as the runner compiles it (max-autotune, coordinate descent): matrix-vector reductions;
- inductor-pdl: the same with `triton.enable_pdl`;
- triton: a Triton kernel per product (SiLU * up inside the down projection's loop, the residual in its epilogue),
  each product's config picked alone from a small grid;
- triton-pdl: the same kernels launched with PDL, weights loaded before the wait;
- triton-pdl-glu: the same, with gate and up rows interleaved so that the gate/up kernel writes SiLU(gate) * up in its
  epilogue, and the down projection a plain product.
Prints (and writes with --out) one JSON: ms per chain (32 layers), share of the bandwidth, each product's picked
config and its time alone, and the first layer's error against float32 eager PyTorch. Needs a Hopper GPU for PDL
and Triton; about 2 minutes on an H200, mostly compiling.
Results: docs/benchmarks.md §6r (the chain read at 81 % with inductor's kernels, 86 % at best with these; in the
decode step these kernels gained 3 % at the median, so the runner does not use them).

    python scripts/gpu/pdl_probe.py --out pdl_probe.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

from runner.measure.timer import replayed_candidates, replayed_seconds

try:
    import triton
    import triton.language as tl
except ImportError:  # a CPU build of PyTorch ships no Triton: say so, not a traceback
    print("pdl_probe.py needs Triton and a CUDA GPU (PyTorch's CUDA builds ship Triton)", file=sys.stderr)
    sys.exit(2)

HIDDEN, INTER, LAYERS = 4096, 11008, 32
VARIANTS = ("inductor", "inductor-pdl", "triton", "triton-pdl", "triton-pdl-glu")
# one layer's products in order: name -> (out, in)
PRODUCTS = {"qkv": (3 * HIDDEN, HIDDEN), "o": (HIDDEN, HIDDEN), "gate_up": (2 * INTER, HIDDEN), "down": (HIDDEN, INTER)}


@triton.jit
def _gemv(
    x_ptr, w_ptr, r_ptr, y_ptr, N, K, stride_wn,
    BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GLU: tl.constexpr, RESIDUAL: tl.constexpr, PDL: tl.constexpr,
    GLU_OUT: tl.constexpr,
):  # fmt: skip
    """y[rows] = x . W[rows] (+ r[rows]) for BLOCK_N rows; GLU: x is silu(x[:K]) * x[K:2K]; GLU_OUT: W's rows
    alternate gate and up, and y[i] = silu(gate_i . x) * (up_i . x) for N / 2 outputs. The first BLOCK_K columns of
    the weights are loaded before waiting for the previous kernel (PDL), the rest in the loop."""
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < N
    cols = tl.arange(0, BLOCK_K)
    w_at = w_ptr + rows[:, None] * stride_wn + cols[None, :]
    if PDL:
        tl.extra.cuda.gdc_launch_dependents()
    w = tl.load(w_at, row_ok[:, None] & (cols < K)[None, :], 0.0, eviction_policy="evict_first")
    if PDL:
        tl.extra.cuda.gdc_wait()
    acc = tl.zeros([BLOCK_N, BLOCK_K], dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        c = k0 + cols
        if k0 > 0:
            w = tl.load(w_at + k0, row_ok[:, None] & (c < K)[None, :], 0.0, eviction_policy="evict_first")
        x = tl.load(x_ptr + c, c < K, 0.0).to(tl.float32)
        if GLU:
            up = tl.load(x_ptr + K + c, c < K, 0.0).to(tl.float32)
            x = x * tl.sigmoid(x) * up
        acc += w.to(tl.float32) * x[None, :]
    y = tl.sum(acc, axis=1)
    if GLU_OUT:
        gate, up = tl.split(tl.reshape(y, [BLOCK_N // 2, 2]))
        out = tl.program_id(0) * (BLOCK_N // 2) + tl.arange(0, BLOCK_N // 2)
        tl.store(y_ptr + out, (gate * tl.sigmoid(gate) * up).to(y_ptr.dtype.element_ty), out < N // 2)
    else:
        if RESIDUAL:
            y += tl.load(r_ptr + rows, row_ok, 0.0).to(tl.float32)
        tl.store(y_ptr + rows, y.to(y_ptr.dtype.element_ty), row_ok)


def gemv(x, w, config, residual=None, glu=False, pdl=False, glu_out=False):
    """x (in,) or (2 * in,) with glu -> (out,), or (out / 2,) with glu_out; config = (BLOCK_N, BLOCK_K, warps)."""
    n, k = w.shape
    block_n, block_k, warps = config
    y = torch.empty(n // 2 if glu_out else n, device=w.device, dtype=w.dtype)
    r = residual if residual is not None else y
    _gemv[(triton.cdiv(n, block_n),)](
        x, w, r, y, n, k, w.stride(0), BLOCK_N=block_n, BLOCK_K=block_k, GLU=glu, RESIDUAL=residual is not None,
        PDL=pdl, GLU_OUT=glu_out, num_warps=warps, **({"launch_pdl": True} if pdl else {}),
    )  # fmt: skip
    return y


def layer_torch(h, qkv_w, o_w, gu_w, down_w):
    """One layer's products as the runner's compiled decode computes them, for one token (1, HIDDEN)."""
    qkv = h @ qkv_w.t()
    o = qkv[:, 2 * HIDDEN :] @ o_w.t() + h
    gate, up = (o @ gu_w.t()).split(INTER, dim=-1)
    return (F.silu(gate) * up) @ down_w.t() + o


def layer_triton(h, weights, configs, pdl, glu_out=False):
    """glu_out: weights[2] is gate/up with alternating rows (interleaved()), SiLU * up in its epilogue."""
    qkv_w, o_w, gu_w, down_w = weights
    qkv = gemv(h, qkv_w, configs["qkv"], pdl=pdl)
    o = gemv(qkv[2 * HIDDEN :], o_w, configs["o"], residual=h, pdl=pdl)
    gu = gemv(o, gu_w, configs["gate_up"], pdl=pdl, glu_out=glu_out)
    return gemv(gu, down_w, configs["down"], residual=o, glu=not glu_out, pdl=pdl)


def interleaved(gate_up: torch.Tensor) -> torch.Tensor:
    """(2 * INTER, in) gate rows then up rows -> rows alternating gate_i, up_i."""
    gate, up = gate_up.split(INTER)
    return torch.stack([gate, up], dim=1).reshape(2 * INTER, -1)


def graph_ms(run, rounds: int, replays: int) -> float:
    """Median milliseconds of one call of `run`, captured once as a CUDA graph and replayed `replays` times a round."""
    return replayed_seconds(run, rounds, torch.device("cuda"), repeats=replays) * 1e3


def candidates(k: int, rows=(1, 2, 4, 8)) -> list[tuple[int, int, int]]:
    """(BLOCK_N, BLOCK_K, warps): a few rows a program, and tiles from 1024 inputs to the whole input."""
    whole = triton.next_power_of_2(k)
    tiles = sorted({1024, 2048, whole})
    return [(n, bk, w) for n, bk, w in itertools.product(rows, tiles, (4, 8)) if n * bk // (32 * w) <= 128]


def each_layer(stack, index, x, config, residual, glu, pdl, glu_out):
    return [gemv(x, layer[index], config, residual=residual, glu=glu, pdl=pdl, glu_out=glu_out) for layer in stack]


def pick_configs(stack, x_for, pdl: bool, rounds: int, glu_out: bool = False) -> dict:
    """Per product, the config whose 32 calls (one per layer's weight, chained through PDL when on) run fastest."""
    picked = {}
    for index, (name, (n, k)) in enumerate(PRODUCTS.items()):
        x, residual, glu = x_for(name)
        out_glu = glu_out and name == "gate_up"
        glu = glu and not glu_out
        seconds = replayed_candidates(
            candidates(k, rows=(2, 4, 8) if out_glu else (1, 2, 4, 8)),
            lambda config: partial(each_layer, stack, index, x, config, residual, glu, pdl, out_glu),  # noqa: B023
            rounds, torch.device("cuda"), repeats=5,
            on_error=lambda c, e: print(f"{name} {c}: {type(e).__name__}: {str(e)[:200]}", file=sys.stderr),  # noqa: B023
        )  # fmt: skip
        timings = {config: s / LAYERS * 1e6 for config, s in seconds.items()}  # us a call
        best = min(timings, key=timings.get)
        size = 2 * n * k
        picked[name] = {
            "config": best,
            "us": round(timings[best], 2),
            "share_of_bandwidth": round(size / timings[best] / 1e6 / 4.8, 3),
            "next_best": sorted((round(t, 2), c) for c, t in timings.items())[1:4],
        }
        print(f"{name} pdl={pdl}: {best} {timings[best]:.2f} us", file=sys.stderr, flush=True)
    return picked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="*", choices=VARIANTS, default=list(VARIANTS), metavar="VARIANT")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds {args.rounds}: use a count of timing rounds (>= 1)")
    if not torch.cuda.is_available():
        parser.error("needs a CUDA GPU (Hopper or newer for the PDL variants); this PyTorch sees none")
    torch.manual_seed(0)
    dev = torch.device("cuda")
    stack = [
        [torch.randn(n, k, device=dev, dtype=torch.bfloat16) * k**-0.5 for n, k in PRODUCTS.values()]
        for _ in range(LAYERS)
    ]
    step_bytes = LAYERS * sum(2 * n * k for n, k in PRODUCTS.values())
    h0 = torch.randn(1, HIDDEN, device=dev, dtype=torch.bfloat16)
    results = {"device": torch.cuda.get_device_name(dev), "torch": torch.__version__, "triton": triton.__version__}
    results |= {"step_gb": round(step_bytes / 1e9, 3), "variants": {}}

    def record(name, ms, extra=None):
        share = step_bytes / (ms / 1e3) / 4.8e12
        results["variants"][name] = {"ms": round(ms, 4), "share_of_4.8TB/s": round(share, 4)} | (extra or {})
        print(f"{name}: {ms:.4f} ms, {share:.1%}", file=sys.stderr, flush=True)
        if args.out:
            Path(args.out).write_text(json.dumps(results, indent=2, default=str))

    # one layer in float32, eagerly: what each variant's first layer must give (the 32-layer chain has no norms, so
    # its values overflow bf16 after a few layers and cannot be compared; they did, as NaN, in calls 36-37)
    reference = layer_torch(h0.float(), *(w.float() for w in stack[0])).reshape(-1)
    for variant in args.variants:
        try:
            if variant.startswith("inductor"):
                options = {"max_autotune": True, "coordinate_descent_tuning": True, "triton.cudagraphs": False}
                if variant == "inductor-pdl":
                    options["triton.enable_pdl"] = True
                torch._dynamo.reset()
                layer = torch.compile(layer_torch, dynamic=False, options=options)

                def run(layer=layer):
                    h = h0
                    for weights in stack:
                        h = layer(h, *weights)
                    return h

                out = layer(h0, *stack[0])
                record(variant, graph_ms(run, args.rounds, 10))
            else:
                pdl, glu_out = variant.startswith("triton-pdl"), variant == "triton-pdl-glu"
                weights = [[*w[:2], interleaved(w[2]), w[3]] for w in stack] if glu_out else stack
                h1 = h0.reshape(-1)
                qkv = torch.randn(3 * HIDDEN, device=dev, dtype=torch.bfloat16)
                gu = torch.randn(2 * INTER, device=dev, dtype=torch.bfloat16)
                x_for = {
                    "qkv": (h1, None, False), "o": (qkv[2 * HIDDEN :], h1, False), "gate_up": (h1, None, False),
                    "down": (gu if not glu_out else gu[:INTER], h1, True),
                }.get  # fmt: skip
                picked = pick_configs(weights, x_for, pdl, args.rounds, glu_out)
                configs = {name: p["config"] for name, p in picked.items()}

                def run(configs=configs, pdl=pdl, h1=h1, weights=weights, glu_out=glu_out):
                    h = h1
                    for layer in weights:
                        h = layer_triton(h, layer, configs, pdl, glu_out)
                    return h

                out = layer_triton(h1, weights[0], configs, pdl, glu_out)
                record(variant, graph_ms(run, args.rounds, 10), {"products": picked})
            error = float((out.float().reshape(-1) - reference).norm() / reference.norm())
            results["variants"][variant]["one_layer_relative_error"] = round(error, 5)  # bf16 rounding: about 1e-2
        except Exception as error:  # one variant that fails leaves the others' figures
            results["variants"][variant] = {"error": f"{type(error).__name__}: {error}"[:600]}
            print(f"{variant}: {results['variants'][variant]['error']}", file=sys.stderr, flush=True)
        if args.out:
            Path(args.out).write_text(json.dumps(results, indent=2, default=str))
    print(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
