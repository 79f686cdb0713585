"""A bf16 matrix-vector Triton kernel for scripts/gpu/gemv_probe.py's `bf16-triton` format: could a hand-written
kernel over plain bf16 weights read faster than inductor's reduction, which the compiled decode runs? The same
layout as the runner's int4/int8 kernels (runner/quant/triton_gemv.py: BLOCK_N rows a program, each thread holding
all of them for its columns, the next step's weights loaded ahead with PREFETCH), without dequantization, the weights
streamed once (evict_first). On the H200 (docs/benchmarks.md §6n) it was faster only on the 4096x11008 shape, so the
runner does not use it. Importing this module needs Triton."""

from __future__ import annotations

import itertools

import torch
import triton
import triton.language as tl

from runner.quant.triton_gemv import WHOLE_BLOCKS, _launch_shapes, _program


def bf16_configs(rows=(2, 4, 8, 16), warps=(2, 4, 8), per_thread=(8, 16), prefetch=(False, True)) -> list:
    """The bf16 kernel's choices: rows per program, warps, inputs of each row per thread and loop step (8 bf16 are
    one 16-byte load) and PREFETCH; 48 configs."""
    return [
        triton.Config({"BLOCK_N": n, "BLOCK_K": 32 * w * k, "PREFETCH": p}, num_warps=w)
        for n, w, k, p in itertools.product(rows, warps, per_thread, prefetch)
    ]


@triton.autotune(configs=bf16_configs(), key=["N", "K"])
@WHOLE_BLOCKS
@triton.jit
def _bf16_gemv(
    x_ptr, w_ptr, y_ptr, N, K, stride_xm, stride_wn, stride_ym,
    BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, PREFETCH: tl.constexpr, EVEN_N: tl.constexpr,
):  # fmt: skip
    """y[m, rows] = x[m] . W[rows] for BLOCK_N rows of a plain (bf16 or fp16) weight, BLOCK_K inputs a loop step;
    the weights stream through once (evict_first), PREFETCH as _int4_gemv."""
    rows, row_ok, cols, x_row, w_at = _program(x_ptr, w_ptr, N, stride_xm, stride_wn, BLOCK_N, BLOCK_K, EVEN_N)
    acc = tl.zeros([BLOCK_N, BLOCK_K], dtype=tl.float32)
    if PREFETCH:
        upcoming = tl.load(w_at, row_ok[:, None] & (cols < K)[None, :], 0.0, eviction_policy="evict_first")
    else:
        upcoming = tl.zeros([BLOCK_N, BLOCK_K], dtype=w_ptr.dtype.element_ty)
    for k0 in range(0, K, BLOCK_K):
        c = k0 + cols
        if PREFETCH:
            w = upcoming
            upcoming = tl.load(
                w_at + (k0 + BLOCK_K), row_ok[:, None] & (c + BLOCK_K < K)[None, :], 0.0, eviction_policy="evict_first"
            )
        else:
            w = tl.load(w_at + k0, row_ok[:, None] & (c < K)[None, :], 0.0, eviction_policy="evict_first")
        x = tl.load(x_row + c, c < K, 0.0).to(tl.float32)
        acc += w.to(tl.float32) * x[None, :]
    y = tl.sum(acc, axis=1)
    tl.store(y_ptr + tl.program_id(1) * stride_ym + rows, y.to(y_ptr.dtype.element_ty), row_ok)


def bf16_gemv(x: torch.Tensor, weight: torch.Tensor):
    """x (..., in) @ weight.T for a plain (out, in) weight in x's dtype -> (..., out); one program column per row of
    x."""
    if weight.dtype != x.dtype or weight.dim() != 2 or weight.shape[1] != x.shape[-1] or weight.stride(1) != 1:
        raise ValueError(
            f"bf16_gemv takes an (out, {x.shape[-1]}) weight with unit stride along its inputs in {x.dtype}, got "
            f"{tuple(weight.shape)} {weight.dtype} strides {weight.stride()}"
        )
    n = weight.shape[0]
    x2, y, grid = _launch_shapes(x, n)
    _bf16_gemv[grid](x2, weight, y, n, weight.shape[1], x2.stride(0), weight.stride(0), y.stride(0))
    return y.reshape(*x.shape[:-1], n)
