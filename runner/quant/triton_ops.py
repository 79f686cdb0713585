"""The custom ops `runner::int4_gemv` and `runner::int8_gemv` over the runner's Triton kernels (triton_gemv.py), and
when a Linear over a runner Triton weight (triton_weights.py) calls them.

As custom ops the kernels stay one opaque call each in a compiled graph, and their fake implementations give
torch.compile the output's shape after checking the operands. The kernels autotune on their first call for each
shape, which benchmarks and synchronizes: that must happen outside a CUDA graph capture. The runner's compiled decode
warms up eagerly before capturing; a graph captured by hand must call each shape once first."""

from __future__ import annotations

import importlib.util
import sys

import torch

from runner.quant.word_packing import check_int4_operands, check_int8_operands

# rows of input up to which a Linear runs the matrix-vector kernel: each row's products read the whole weight again
# (one program column per row), so a few rows only; more (a prefill, a large batch) dequantize and multiply. At 4
# rows the kernel decoded a 7B model at 668 tok/s, below tinygemm's 873 (docs/benchmarks.md §6k); the dequantizing
# path at 2-4 rows was not measured, so where the kernel stops paying is still open
KERNEL_ROWS = 4
HAS_TRITON = importlib.util.find_spec("triton") is not None  # CUDA builds of PyTorch ship it


@torch.library.custom_op("runner::int4_gemv", mutates_args=())
def int4_gemv(
    x: torch.Tensor, words: torch.Tensor, scale: torch.Tensor, low: torch.Tensor, group_size: int
) -> torch.Tensor:
    from runner.quant import triton_gemv

    return triton_gemv.int4_gemv(x, words, scale, low, group_size)


@int4_gemv.register_fake
def _(x, words, scale, low, group_size):
    check_int4_operands(x, words, scale, low, group_size)
    return x.new_empty(*x.shape[:-1], words.shape[0])


@torch.library.custom_op("runner::int8_gemv", mutates_args=())
def int8_gemv(x: torch.Tensor, words: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    from runner.quant import triton_gemv

    return triton_gemv.int8_gemv(x, words, scale)


@int8_gemv.register_fake
def _(x, words, scale):
    check_int8_operands(x, words, scale)
    return x.new_empty(*x.shape[:-1], words.shape[0])


def runs_kernel(x: torch.Tensor) -> bool:
    """Whether a Linear over a runner Triton weight runs the kernel for input `x` (else it dequantizes)."""
    return x.is_cuda and x.numel() // x.shape[-1] <= KERNEL_ROWS and HAS_TRITON


def chosen_configs(keys: set[tuple[str, tuple]] | None = None) -> dict[str, dict[str, str]]:
    """The config each kernel's autotuning chose, per key (output rows N, words per row and, for int4, the group
    size; then the arguments' dtypes), limited to `keys` ((kernel name, key values) pairs, as the weights'
    `kernel_key()` gives them) when given: the autotuners' caches live as long as the process, across the jobs of a
    sweep. Empty where no kernel has run in this process (the CPU, uncompiled prefill)."""
    kernels = sys.modules.get("runner.quant.triton_gemv")
    if kernels is None:
        return {}
    chosen = {}
    for name in ("_int4_gemv", "_int8_gemv"):
        tuner = getattr(kernels, name)
        for key, config in tuner.cache.items():
            values, dtypes = tuple(key[: len(tuner.keys)]), key[len(tuner.keys) :]
            if keys is not None and (name, values) not in keys:
                continue
            label = ", ".join(f"{k}={v}" for k, v in zip(tuner.keys, values, strict=True))
            chosen.setdefault(name, {})[label + (f", dtypes={'/'.join(map(str, dtypes))}" if dtypes else "")] = str(
                config
            )
    return chosen
