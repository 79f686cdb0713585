"""Batch-1 decode's matrix-vector products, one kernel at a time: how much of the memory bandwidth each weight
format reaches on the 7B llama Linear shapes, outside the model. Issue 12 asks why int8 weight-only reaches 37 % of
4.8 TB/s in the compiled decode (bf16: 62 %) and whether any int4 kernel can beat bf16 by 1.6×; this answers the
kernel half of both before anything is built into the runner.

Formats, each `y = x @ W.T` for x of shape (1, K), all compiled as the runner compiles the decode step (inductor
with coordinate descent, which turns a one-row matmul into a fused reduction; CUDA graphs left out):
- bf16: plain weights;
- bf16-cublas: the same product not compiled, so cuBLAS's own kernel (what the decode would run without coordinate
  descent, which is what turns a one-row matmul into inductor's reduction);
- int8: int8 weights and a scale per output row, dequantized inside the compiled function (torchao int8wo's math);
- int8-torchao: torchao's own int8wo layer, as `quant=int8wo` compiles it (weights unwrapped to plain tensors);
- fp8wo-torchao, fp8dq-torchao: the same for `quant=fp8wo` and `quant=fp8dq` (GPUs of compute capability 8.9 and
  up only), the fp8 figures issue 12 asks for, without compiling a whole 7B model for each (over 5 minutes);
- int4-inductor: the runner's own layout (`quant.int4_packing_format=inductor`, runner/quant/packed_int4.py): two
  4-bit values per byte with a scale and zero point per group of --group-size inputs, unpacked and dequantized
  inside the compiled function, so inductor fuses unpacking, dequantization and the dot product into one kernel
  that reads half a byte per weight (no library ships such a layout for Hopper);
- int4-inductor-split: the same layout, the nibbles reduced against the even and odd inputs in packed order
  (a candidate rewrite of the runner's int4 decode, one row of x only);
- int4-tinygemm: PyTorch's `_weight_int4pack_mm` (torchao int4wo's default kernel), not compiled;
- int4-gemlite, int8-gemlite: gemlite's Triton kernels (`quant=int4wo_gemlite`, `int8wo_gemlite`,
  runner/quant/gemlite_weights.py), the custom op the quantized Linear calls; where gemlite is installed;
- int4-fbgemm: FBGEMM's CUTLASS mixed-input kernel over preshuffled int4 weights (`fbgemm-gpu-genai`, whose
  1.6.0 wheel is built for torch 2.11 and CUDA 13; the kernel torchao's `int4_packing_format=preshuffled` calls under
  the unpublished `mslk` name), bf16 activations, groups of max(--group-size, 128); where fbgemm_gpu is installed;
- int4-triton, int8-triton: the runner's own Triton kernels over int32 words (runner/quant/triton_gemv.py), levels
  turned into floats by bit operations instead of conversions; autotuned on first call (the chosen configs are in
  the JSON's `triton_configs`); where Triton is installed;
- bf16-triton: a Triton kernel over the plain bf16 weight in the runner kernels' layout (rows per program,
  inputs per loop step, the next step's weights loaded ahead; scripts/gpu/bf16_gemv.py), against inductor's
  reduction of the `bf16` row.

Each format's time per call is the median of --rounds timings of --calls calls on the runner's clock (CUDA
events). Prints one JSON object: per shape and format, microseconds, GB/s, share of the bandwidth; and the sum
over one decoder layer's 7 Linear layers times 32 layers, a floor for the Linear part of a 7B decode step.

    python scripts/gpu/gemv_probe.py                      # an H200: about a minute, most of it compiling
    python scripts/gpu/gemv_probe.py --device cpu --shapes 256x128 --calls 3 --rounds 1   # tries it on the CPU
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from functools import partial
from pathlib import Path

import torch

from runner.measure.timer import replayed_seconds
from runner.quant.int4_grid import levels
from runner.quant.packed_int4 import PackedInt4Tensor, unpack
from runner.quant.triton_ops import chosen_configs

# every format formats() can build; which of them run depends on the device (fp8 and tinygemm: CUDA only)
FORMATS = (
    "bf16", "int8", "int4-inductor", "int4-inductor-split", "bf16-cublas", "int8-torchao", "fp8wo-torchao",
    "fp8dq-torchao", "int4-tinygemm", "int4-gemlite", "int8-gemlite", "int4-fbgemm", "int4-triton", "int8-triton",
    "bf16-triton",
)  # fmt: skip
# one llama-2-7b decoder layer's Linear shapes (out, in) with how many of each
LLAMA_7B_LAYER = {(4096, 4096): 4, (11008, 4096): 2, (4096, 11008): 1}
LAYERS = 32


def quantize_int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8, one scale per output row (torchao Int8WeightOnlyConfig's per-row scheme)."""
    scale = weight.abs().amax(dim=1, keepdim=True).float().clamp(min=1e-8) / 127
    q = torch.round(weight.float() / scale).clamp(-128, 127).to(torch.int8)
    return q, scale.squeeze(1).to(weight.dtype)


def bf16_gemv(x, weight):
    return x @ weight.t()


def int8_gemv(x, q, scale):
    return (x @ q.t().to(x.dtype)) * scale


def make_int4_gemv(group: int):
    def int4_gemv(x, packed, scale, zero):
        return x @ unpack(packed, scale, zero, group).t()

    return int4_gemv


def make_int4_split_gemv(group: int):
    """The same layout and math without interleaving the nibbles back into input order: low nibbles meet the
    even inputs and high nibbles the odd ones, so the reduction walks the packed bytes in order, each loaded once.
    `int4-inductor` (unpack, then a product) read 8-10 % of the H200's bandwidth (docs/benchmarks.md §6f); this is
    the candidate rewrite, for one row of x only (it broadcasts instead of multiplying matrices)."""

    def int4_split_gemv(x, packed, scale, zero):
        out, groups = scale.shape
        p = packed.reshape(out, groups, group // 2)
        pairs = x.reshape(groups, group // 2, 2)
        lo = (p & 0xF).to(scale.dtype) * scale.unsqueeze(2) + zero.unsqueeze(2)
        hi = (p >> 4).to(scale.dtype) * scale.unsqueeze(2) + zero.unsqueeze(2)
        return (lo * pairs[..., 0] + hi * pairs[..., 1]).sum(dim=(1, 2)).unsqueeze(0)

    return int4_split_gemv


def timed_us(fn, arg_sets: list[tuple], calls: int, rounds: int, device: torch.device) -> float:
    """Median microseconds per call over `rounds` runs of `calls` calls, on the runner's clock (CUDA events on a
    GPU, perf_counter on the CPU). The calls cycle through `arg_sets`, copies of the weights that together exceed
    the L2 cache, so each call reads its weights from memory as a decode step does. On a GPU the calls are
    captured in one CUDA graph and replayed: a lone matrix-vector product takes a few microseconds, less than
    launching it from Python, and a plain loop would time the launches (it did on the H200 at 3731a2e: 35-70 us
    per call for every compiled format)."""
    run = lambda: [fn(*arg_sets[i % len(arg_sets)]) for i in range(calls)]  # noqa: E731
    return replayed_seconds(run, rounds, device) * 1e6 / calls


def nbytes(args: tuple) -> int:
    """Bytes of the weights and scales among a format's arguments (None stands for x)."""
    return sum(a.numel() * a.element_size() for a in args if a is not None)


def formats(weight: torch.Tensor, group: int, compile_options: dict) -> dict:
    """name -> (function, its arguments (None: x), bytes of weights and scales it must read), or the exception that
    kept a torchao format from being built."""
    compiled = lambda fn: torch.compile(fn, dynamic=False, options=compile_options)  # noqa: E731
    int4 = PackedInt4Tensor.from_hp(weight, group)
    found = {
        "bf16": (compiled(bf16_gemv), (None, weight)),
        "int8": (compiled(int8_gemv), (None, *quantize_int8(weight))),
        "int4-inductor": (compiled(make_int4_gemv(group)), (None, int4.packed, int4.scale, int4.zero)),
        "int4-inductor-split": (compiled(make_int4_split_gemv(group)), (None, int4.packed, int4.scale, int4.zero)),
        "bf16-cublas": (bf16_gemv, (None, weight)),
    }
    torchao_formats = {"int8-torchao": "int8wo"}
    if weight.is_cuda and torch.cuda.get_device_capability(weight.device) >= (8, 9):
        torchao_formats |= {"fp8wo-torchao": "fp8wo", "fp8dq-torchao": "fp8dq"}

    def torchao(scheme: str):
        run, args = torchao_layer(weight, scheme)
        return compiled(run), args

    # formats a library builds, each where it can run
    library = {name: partial(torchao, scheme) for name, scheme in torchao_formats.items()}
    if weight.is_cuda and hasattr(torch.ops.aten, "_weight_int4pack_mm"):
        found["int4-tinygemm"] = tinygemm(weight, group)
    if weight.is_cuda and importlib.util.find_spec("gemlite") is not None:
        library |= {f"int{bits}-gemlite": partial(gemlite_layer, weight, bits, group) for bits in (4, 8)}
    if weight.is_cuda and importlib.util.find_spec("fbgemm_gpu") is not None:
        library["int4-fbgemm"] = partial(fbgemm_int4, weight, group)
    if weight.is_cuda and importlib.util.find_spec("triton") is not None:
        library |= {"int4-triton": partial(triton_int4, weight, group), "int8-triton": partial(triton_int8, weight)}
        library["bf16-triton"] = partial(triton_bf16, weight)
    failed = {}
    for name, build in library.items():
        try:
            found[name] = build()
        except Exception as error:  # a format its library cannot build here is a row with the reason, not a crash
            failed[name] = error
    return {name: (fn, args, nbytes(args)) for name, (fn, args) in found.items()} | failed


def torchao_layer(weight: torch.Tensor, scheme: str = "int8wo"):
    """A torchao layer as the runner compiles it (quant=int8wo, fp8wo, fp8dq): the runner's own torchao config, the
    weight unwrapped into plain tensors (unwrap_tensor_subclass) and rebuilt inside the compiled function. For
    int8wo, the `int8` format above is this math written out; on the H200 it was slower than bf16 while the runner's
    int8wo decoded faster (docs/benchmarks.md §6f), so this times torchao's own path."""
    from torchao.quantization import quantize_
    from torchao.utils import unwrap_tensor_subclass

    from runner.config.quant import QuantConfig, TorchAoScheme
    from runner.quant.methods.torchao import ao_config

    out, k = weight.shape
    layer = torch.nn.Linear(k, out, bias=False, device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        layer.weight.copy_(weight)
    quantize_(layer, ao_config(QuantConfig(method="torchao", scheme=TorchAoScheme(scheme))))
    unwrap_tensor_subclass(torch.nn.Sequential(layer))  # it unwraps the children of what it is given
    weights = layer.parametrizations.weight
    plain = tuple(p.detach() for _, p in sorted(weights.named_parameters(recurse=False)))
    rebuild = weights[0]

    def run(x, *plain):
        return torch.nn.functional.linear(x, rebuild(*plain))

    return run, (None, *plain)


def tinygemm(weight: torch.Tensor, group: int):
    """torchao int4wo's default kernel, on the same weights (its own packing, bfloat16 scales and zeros)."""
    q, scale, low = levels(weight, group)  # the same levels as the runner's layout
    packed = torch.ops.aten._convert_weight_to_int4pack((q[:, ::2] << 4) | q[:, 1::2], 8)
    zeros = low + 8 * scale  # tinygemm dequantizes (q - 8) * scale + zero
    scales_and_zeros = torch.stack((scale, zeros), dim=2).transpose(0, 1).contiguous().to(weight.dtype)

    def run(x, packed, scales_and_zeros):
        return torch.ops.aten._weight_int4pack_mm(x, packed, group, scales_and_zeros)

    return run, (None, packed, scales_and_zeros)


def gemlite_layer(weight: torch.Tensor, bits: int, group: int):
    """gemlite's kernel on the runner's gemlite weight: the custom op that its Linear calls, on the plain tensors."""
    from runner.quant.gemlite_weights import gemlite_weight

    packed = gemlite_weight(weight, bits, group)
    meta_args = packed.gemlite_kwargs["meta_args"]

    def run(x, qdata, scale, zero):
        return torch.ops.gemlite.forward_functional(x, None, [qdata, scale, zero], meta_args)

    return run, (None, packed.qdata, packed.scale, packed.zero_point)


def fbgemm_int4(weight: torch.Tensor, group: int):
    """FBGEMM's bf16 x int4 kernel on its own preshuffled layout (scales and zero points per group, bf16)."""
    import fbgemm_gpu.experimental.gen_ai  # noqa: F401  (registers torch.ops.fbgemm's gen_ai kernels)
    from fbgemm_gpu.experimental.gen_ai.quantize import quantize_int4_preshuffle

    packed, (scale, zero) = quantize_int4_preshuffle(weight, group_size=max(group, 128), dtype="bf16", use_zp=True)

    def run(x, packed, scale, zero):
        return torch.ops.fbgemm.bf16i4bf16_shuffled(x, packed, scale, zero)

    return run, (None, packed, scale, zero)


def triton_int4(weight: torch.Tensor, group: int):
    """The runner's int4 Triton kernel on its word layout (scale and minimum per group, in the weight's dtype)."""
    from runner.quant.triton_gemv import int4_gemv
    from runner.quant.word_packing import pack_int4

    return partial(int4_gemv, group_size=group), (None, *pack_int4(weight, group))


def triton_int8(weight: torch.Tensor):
    """The runner's int8 Triton kernel on its word layout (a scale per output row)."""
    from runner.quant.triton_gemv import int8_gemv
    from runner.quant.word_packing import pack_int8

    return int8_gemv, (None, *pack_int8(weight))


def triton_bf16(weight: torch.Tensor):
    """A Triton kernel over the plain bf16 weight in the layout of the runner's kernels, against inductor's."""
    from bf16_gemv import bf16_gemv  # scripts/gpu/bf16_gemv.py, beside this script

    return bf16_gemv, (None, weight)


# format -> (module, autotuned kernel)
TRITON_KERNELS = {
    "int4-triton": ("runner.quant.triton_gemv", "_int4_gemv"),
    "int8-triton": ("runner.quant.triton_gemv", "_int8_gemv"),
    "bf16-triton": ("bf16_gemv", "_bf16_gemv"),
}


def widen_triton_search() -> None:
    """--triton-configs wide: the kernels autotune over triton_gemv.WIDE instead of their default list."""
    from runner.quant import triton_gemv

    for module, name in TRITON_KERNELS.values():
        if module != triton_gemv.__name__:  # bf16: its own list is the search
            continue
        kernel = getattr(triton_gemv, name)
        kernel.configs = triton_gemv.configs(**triton_gemv.WIDE)
        kernel.early_config_prune = None  # no pinned configs (triton_gemv.PINNED_INT4): every shape searches
        kernel.cache.clear()


def fastest_configs(name: str, keep: int = 6) -> list:
    """The `keep` fastest configs of the Triton kernel's last autotuning (the shape just run), with microseconds
    (Triton's do_bench, its cache flushed between calls)."""
    module, kernel_name = TRITON_KERNELS[name]
    kernel = getattr(sys.modules[module], kernel_name)
    timings = getattr(kernel, "configs_timings", None) or {}
    ranked = sorted(timings.items(), key=lambda item: item[1][0] if isinstance(item[1], list) else item[1])
    return [[str(config), round(1e3 * (t[0] if isinstance(t, list) else t), 2)] for config, t in ranked[:keep]]


def measure(entry: tuple, x: torch.Tensor, reference: torch.Tensor, args, device: torch.device) -> dict:
    """One format on one shape: microseconds per call over cold weights, GB/s, share of the bandwidth, error."""
    fn, fn_args, size = entry
    fn_args = tuple(x if a is None else a for a in fn_args)
    got = fn(*fn_args).float()
    # weight copies beyond the L2 cache; more than calls would go unused
    copies = max(1, min(args.calls, -(-args.cold_bytes // size)))
    arg_sets = [fn_args] + [tuple(a if a is x else a.clone() for a in fn_args) for _ in range(copies - 1)]
    us = timed_us(fn, arg_sets, args.calls, args.rounds, device)
    gbs = size / us / 1e3
    return {
        "us": round(us, 2),
        "gbs": round(gbs, 1),
        "weight_copies": copies,
        "share_of_bandwidth": round(gbs / args.bandwidth_gbs, 3),
        "relative_error": round(float((got - reference).norm() / reference.norm()), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--shapes", nargs="*", help="OUTxIN shapes (default: a 7B llama layer's three shapes)")
    parser.add_argument("--group-size", type=int, default=128)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--cold-bytes",
        type=int,
        default=256 * 2**20,
        help="weights cycled through per format (default 256 MiB: over 4x the H200's 60 MB L2; at most --calls "
        "copies); a decode step's 13 GB of weights gives every call a weight of its own, as in the model",
    )
    parser.add_argument("--bandwidth-gbs", type=float, default=4800.0, help="the card's memory bandwidth (H200)")
    parser.add_argument(
        "--formats", nargs="*", choices=FORMATS, metavar="FORMAT",
        help=f"only these formats (default: all that can run here): {', '.join(FORMATS)}",
    )  # fmt: skip
    parser.add_argument("--out", help="also write the JSON here after every format, so a run cut short keeps its rows")
    parser.add_argument(
        "--triton-configs", choices=("default", "wide"), default="default",
        help="int4-triton/int8-triton autotune over the kernels' own list (default) or triton_gemv.WIDE, and the "
        "JSON keeps each shape's fastest configs",
    )  # fmt: skip
    args = parser.parse_args()
    if args.triton_configs == "wide":
        widen_triton_search()
    device = torch.device(args.device)
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes] if args.shapes else list(LLAMA_7B_LAYER)
    compile_options = {"coordinate_descent_tuning": True} if device.type == "cuda" else {}
    torch.manual_seed(0)
    results: dict = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "group_size": args.group_size,
        "timing": "CUDA graph of the calls, over weight copies larger than L2" if device.type == "cuda" else "loop",
        "shapes": {},
    }
    for out, k in shapes:
        weight = torch.randn(out, k, device=device, dtype=torch.bfloat16) * 0.02
        x = torch.randn(1, k, device=device, dtype=torch.bfloat16)
        reference = x.float() @ weight.float().t()
        row = {}
        built = formats(weight, args.group_size, compile_options)
        for name in set(args.formats or ()) - set(built):
            row[name] = {"error": f"{name} cannot run on {device}"}
        for name, entry in built.items():
            if args.formats and name not in args.formats:
                continue
            print(f"{out}x{k} {name}", file=sys.stderr, flush=True)
            try:
                if isinstance(entry, Exception):
                    raise entry
                row[name] = measure(entry, x, reference, args, device)
                if name in TRITON_KERNELS:
                    row[name]["fastest_configs"] = fastest_configs(name)
            except Exception as error:  # one format that fails (compile, kernel) leaves the others' figures
                row[name] = {"error": f"{type(error).__name__}: {error}"[:400]}
            results["shapes"][f"{out}x{k}"] = row
            results["triton_configs"] = chosen_configs()  # what autotuning chose per shape
            if args.out:
                Path(args.out).write_text(json.dumps(results, indent=2))
    if not args.shapes:  # a whole 7B decoder stack's Linear layers
        rows = results["shapes"].values()
        names = [n for n in next(iter(rows)) if all("us" in row[n] for row in rows)]
        results["per_token_linear_ms_32_layers"] = {
            name: round(
                LAYERS
                * sum(n * results["shapes"][f"{o}x{i}"][name]["us"] for (o, i), n in LLAMA_7B_LAYER.items())
                / 1e3,
                3,
            )
            for name in names
        }
        if args.out:  # the per-token sums too, not only the console's copy (they were missing at f5f8a02)
            Path(args.out).write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
