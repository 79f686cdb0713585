"""The runner's Triton kernels for decode's matrix-vector products over int4 and int8 weights (the word layouts of
runner/quant/word_packing.py), `y = x @ W.T` for a few rows of x.

Why hand-written: at one row every int4 kernel on this stack reads at most 34 % of the H200's bandwidth
(tinygemm, gemlite, FBGEMM's preshuffled kernel: docs/benchmarks.md §6f, §6i, §6j), so 4-bit weights could not
decode 1.6x faster than bf16. A one-row product has to stream 18 bytes per clock and SM on the H200, 37 int4
levels, and an SM issues 128 thread-instructions per clock, so each level may cost about 3.5 instructions in all.
These kernels spend one shift per two levels, one LOP3 per level (its bits ORed into the mantissa of 1.0: no
integer-to-float conversion, which Hopper runs at 16 per clock and SM, and no subtraction per level) and one fused
multiply-add, and each thread holds all the rows of its columns, so an input is loaded and converted once for
BLOCK_N rows: 3.5-4.5 SASS instructions per level in the loop (ptxas for sm_90; 3.5-3.8 with 8-16 rows a
program), against 6.7 for this file's earlier version (§6j). Each program reduces BLOCK_N output rows over the
whole input; one program column per row of x.

Importing this module needs Triton (a CUDA build of PyTorch ships it); TRITON_INTERPRET=1 runs the kernels on
the CPU, slowly, for tests."""

from __future__ import annotations

import itertools

import torch
import triton
import triton.language as tl

from runner.quant.word_packing import INT8_CHUNK, check_int4_operands, check_int8_operands

# A level becomes a float by bit operations, with no integer-to-float conversion: its bits moved into a float32's
# mantissa and ORed with the bits of 1.0 read as 1 + level / 2**8 (a field ending at bit 22: int8, or int4 at bits
# 19-22 gives 1 + level / 16) or 1 + level / 2**16 (int8 at bits 7-14) or 1 + level / 256 (int4 at bits 15-18). One
# shift places two fields, one AND-OR (a single LOP3, given the bits of 1.0 in a register: the kernels take them as
# the argument `one`) extracts each, and the input it multiplies is scaled by the field's 2**n so that the product is
# 2**n * x + level * x; the 2**n * x parts are summed once per column and subtracted per group.
ONE_BITS = 0x3F800000
INT4_HIGH: tl.constexpr = tl.constexpr(0x00780000)  # bits 19-22: 1 + level / 16
INT4_LOW: tl.constexpr = tl.constexpr(0x00078000)  # bits 15-18: 1 + level / 256
INT8_HIGH: tl.constexpr = tl.constexpr(0x007F8000)  # bits 15-22: 1 + level / 2**8
INT8_LOW: tl.constexpr = tl.constexpr(0x00007F80)  # bits 7-14: 1 + level / 2**16


def configs(rows=(4, 8, 16), warps=(1, 2, 4), words=(4,), prefetch=(False, True)) -> list:
    """Every combination of rows per program, warps, words of each row per thread and loop step (BLOCK_W = 32
    threads x warps x those words, so that each thread holds all BLOCK_N rows of its columns and reads each input
    once for all of them) and PREFETCH. The defaults are what the kernels autotune over: in the 10 choices of the
    H200 probe over 7B and fused shapes (docs/benchmarks.md §6j) every one took 4 words a thread, none 8, so 8 is
    not tried (18 configs instead of 36: half the first call's tuning). `gemv_probe.py --triton-configs wide`
    searches further (WIDE)."""
    return [
        triton.Config({"BLOCK_N": n, "BLOCK_W": 32 * w * words_, "PREFETCH": p}, num_warps=w)
        for n, w, words_, p in itertools.product(rows, warps, words, prefetch)
    ]


WIDE = {"rows": (4, 8, 16, 32), "warps": (1, 2, 4, 8), "words": (2, 4)}  # a probe's search: 64 configs

# Configs pinned on Hopper (compute capability 9.0: chosen on the H200; the H100 shares it, untested) for the 7B int4
# llama shapes with fused projections, per (output rows, int32 words per row, group size): (BLOCK_N, BLOCK_W, PREFETCH,
# warps). Autotuning times each config alone, where the top four of a shape lie within 3-9 % of each other, and its
# picks change from run to run; the decode step is not indifferent: the same code decoded at 2.68 ms/token with these
# picks and at 3.75 with others for q/k/v (4, 128, False, 1) and gate/up (8, 512, False, 4) (docs/benchmarks.md §6k,
# two GPUs of one host, one sweep each). With the pins the step is 2.39-2.47 ms of GPU work; runs took 2.60-3.68
# ms/token while the host paced them (§6l), 2.52-2.69 once host_loop.py trimmed generate's loop (§6m). Other shapes
# and GPUs autotune.
PINNED_INT4 = {
    (12288, 512, 128): (8, 128, True, 1),  # q/k/v fused
    (4096, 512, 128): (4, 256, True, 2),  # o_proj
    (22016, 512, 128): (4, 128, False, 1),  # gate/up fused
    (4096, 1376, 128): (4, 256, True, 2),  # down_proj
}


def _hopper() -> bool:
    return torch.cuda.is_available() and torch.cuda.get_device_capability() == (9, 0)


def pinned(table: dict, key_names: tuple[str, ...]):
    """An autotuner's `early_config_prune`: the one config `table` pins for this call's key on Hopper, else every
    config."""

    def prune(configs: list, named_args: dict, **kwargs) -> list:
        values = {**named_args, **kwargs}
        choice = table.get(tuple(values.get(name) for name in key_names)) if _hopper() else None
        if choice is None:
            return configs
        fields = ("BLOCK_N", "BLOCK_W", "PREFETCH")
        chosen = [c for c in configs if (*(c.kwargs[k] for k in fields), c.num_warps) == choice]
        return chosen or configs

    return prune


@triton.jit
def _shifted(words, shift: tl.constexpr):
    """words << shift (a negative shift: >>, arithmetic; the fields read afterwards are masked)."""
    if shift >= 0:
        return words << shift
    else:
        return words >> (-shift)


@triton.jit
def _as_float(bits, mask: tl.constexpr, one):
    return ((bits & mask) | one).to(tl.float32, bitcast=True)


# EVEN_N: the rows divide into whole blocks (every 7B shape does), so no load or store needs a row mask
WHOLE_BLOCKS = triton.heuristics({"EVEN_N": lambda args: args["N"] % args["BLOCK_N"] == 0})


@triton.jit
def _program(
    x_ptr, w_ptr, N, stride_xm, stride_wn, BLOCK_N: tl.constexpr, BLOCK_W: tl.constexpr, EVEN_N: tl.constexpr
):
    """This program's output rows (and which exist: all of them with EVEN_N, a constant the compiler folds), its
    word columns, its row of x (program column) and the addresses of its first step's words."""
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    cols = tl.arange(0, BLOCK_W)
    w_at = w_ptr + rows[:, None] * stride_wn + cols[None, :]
    row_ok = tl.full([BLOCK_N], True, tl.int1) if EVEN_N else (rows < N)
    return rows, row_ok, cols, x_ptr + tl.program_id(1) * stride_xm, w_at


@triton.jit
def _first_words(
    w_at, row_ok, cols, words_per_row, BLOCK_N: tl.constexpr, BLOCK_W: tl.constexpr, PREFETCH: tl.constexpr
):
    """The first step's words, loaded before the loop when PREFETCH (else a placeholder the loop never reads)."""
    if PREFETCH:
        return tl.load(w_at, row_ok[:, None] & (cols < words_per_row)[None, :], 0)
    else:
        return tl.zeros([BLOCK_N, BLOCK_W], dtype=tl.int32)


@triton.jit
def _step(
    w_at, w0, upcoming, row_ok, cols, words_per_row,
    PER: tl.constexpr, SPAN: tl.constexpr, BLOCK_W: tl.constexpr, PREFETCH: tl.constexpr,
):  # fmt: skip
    """The loop step from word w0 on: which of its word columns exist, its words (rows x BLOCK_W) and, with PREFETCH,
    the next step's, loaded now and used one step later (without, `upcoming` is passed through), and the offset in x
    of each column's first input: word c holds runs of PER consecutive inputs of the SPAN inputs (an int4 group, an
    int8 chunk) starting at (c // PER) * SPAN + c % PER."""
    c = w0 + cols
    if PREFETCH:
        words = upcoming
        upcoming = tl.load(w_at + (w0 + BLOCK_W), row_ok[:, None] & (c + BLOCK_W < words_per_row)[None, :], 0)
    else:
        words = tl.load(w_at + w0, row_ok[:, None] & (c < words_per_row)[None, :], 0)
    x_at = tl.max_contiguous(tl.multiple_of((c // PER) * SPAN + c % PER, PER), PER)
    return c < words_per_row, words, upcoming, x_at


@triton.jit
def _finish(
    y, squares, K, eps, r_ptr, out_ptr, rows, row_ok, N, BLOCK_N: tl.constexpr, NORM: tl.constexpr,
    RESIDUAL: tl.constexpr, GLU: tl.constexpr,
):  # fmt: skip
    """Store the rows' dot products. The fused decode step's options (runner/fused_decode/): NORM, the inputs were x *
    g and `squares` holds x**2 summed over the K inputs, so y is scaled by 1 / rms(x) (RMS norm); RESIDUAL, plus
    r[rows]; GLU, the rows alternate gate and up (an interleaved gate/up weight) and out[row / 2] = SiLU(gate) * up.
    Each product is rounded to the output's dtype before the residual or SiLU, as Transformers' forward rounds it."""
    out = out_ptr.dtype.element_ty
    if NORM:
        y = y * tl.rsqrt(tl.sum(squares, axis=0) / K + eps)
    if GLU:
        gate, up = tl.split(tl.reshape(y, [BLOCK_N // 2, 2]))
        gate = gate.to(out).to(tl.float32)
        silu = (gate * tl.sigmoid(gate)).to(out).to(tl.float32)
        half = tl.program_id(0) * (BLOCK_N // 2) + tl.arange(0, BLOCK_N // 2)
        tl.store(out_ptr + half, (silu * up.to(out).to(tl.float32)).to(out), half < N // 2)
    else:
        if RESIDUAL:
            y = y.to(out).to(tl.float32) + tl.load(r_ptr + rows, row_ok, 0.0).to(tl.float32)
        tl.store(out_ptr + rows, y.to(out), row_ok)


# restore_value: the fused decode step adds its residual in place (y is the residual), so each timed run of a config
# starts from the same y; the key holds its options, so its variants tune apart from the plain product
@triton.autotune(
    configs=configs(),
    key=["N", "words_per_row", "GROUP", "NORM", "RESIDUAL", "GLU"],
    prune_configs_by={"early_config_prune": pinned(PINNED_INT4, ("N", "words_per_row", "GROUP"))},
    restore_value=["y_ptr"],
)
@WHOLE_BLOCKS
@triton.jit
def _int4_gemv(
    x_ptr, w_ptr, s_ptr, z_ptr, y_ptr, N, words_per_row, groups, one, stride_xm, stride_wn, stride_sn, stride_ym,
    GROUP: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_W: tl.constexpr, PREFETCH: tl.constexpr, EVEN_N: tl.constexpr,
    g_ptr=None, r_ptr=None, eps=0.0, NORM: tl.constexpr = False, RESIDUAL: tl.constexpr = False,
    GLU: tl.constexpr = False,
):  # fmt: skip
    """y[m, rows] for BLOCK_N rows, BLOCK_W words (BLOCK_W / (GROUP / 8) groups) of each row per loop step.
    PREFETCH: load the next step's words before reducing this step's, so the loads stay in flight. NORM, RESIDUAL,
    GLU: the fused decode step's prologue and epilogues (_finish)."""
    PER: tl.constexpr = GROUP // 8  # words per group
    GPS: tl.constexpr = BLOCK_W // PER  # groups per step
    rows, row_ok, cols, x_row, w_at = _program(x_ptr, w_ptr, N, stride_xm, stride_wn, BLOCK_N, BLOCK_W, EVEN_N)
    acc = tl.zeros([BLOCK_N, GPS], dtype=tl.float32)
    squares = tl.zeros([BLOCK_W], dtype=tl.float32)
    upcoming = _first_words(w_at, row_ok, cols, words_per_row, BLOCK_N, BLOCK_W, PREFETCH)
    for w0 in range(0, words_per_row, BLOCK_W):
        # word c holds inputs x_at + i * PER, i = 0..7 (nibble i)
        step = _step(w_at, w0, upcoming, row_ok, cols, words_per_row, PER, GROUP, BLOCK_W, PREFETCH)
        c_ok, words, upcoming, x_at = step
        part = tl.zeros([BLOCK_N, BLOCK_W], dtype=tl.float32)
        x_low_sum = tl.zeros([BLOCK_W], dtype=tl.float32)  # the inputs of the fields at bits 15-18
        x_high_sum = tl.zeros([BLOCK_W], dtype=tl.float32)  # and at bits 19-22
        for pair in tl.static_range(4):  # nibbles 2 * pair (to bits 15-18) and 2 * pair + 1 (to bits 19-22)
            bits = _shifted(words, 15 - 8 * pair)
            x_low = tl.load(x_row + x_at + (2 * pair) * PER, c_ok, 0.0).to(tl.float32)
            x_high = tl.load(x_row + x_at + (2 * pair + 1) * PER, c_ok, 0.0).to(tl.float32)
            if NORM:
                squares += x_low * x_low + x_high * x_high
                x_low = x_low * tl.load(g_ptr + x_at + (2 * pair) * PER, c_ok, 0.0).to(tl.float32)
                x_high = x_high * tl.load(g_ptr + x_at + (2 * pair + 1) * PER, c_ok, 0.0).to(tl.float32)
            part += _as_float(bits, INT4_LOW, one) * (x_low * 256.0)[None, :]
            part += _as_float(bits, INT4_HIGH, one) * (x_high * 16.0)[None, :]
            x_low_sum += x_low
            x_high_sum += x_high
        # per group: sum of level * x = part - (256 * low inputs + 16 * high inputs); weight = level * scale + minimum
        g = w0 // PER + tl.arange(0, GPS)
        part_g = tl.sum(tl.reshape(part, [BLOCK_N, GPS, PER]), axis=2)
        low_g = tl.sum(tl.reshape(x_low_sum, [GPS, PER]), axis=1)
        high_g = tl.sum(tl.reshape(x_high_sum, [GPS, PER]), axis=1)
        scaled_g = 256.0 * low_g + 16.0 * high_g
        x_g = low_g + high_g
        ok = row_ok[:, None] & (g < groups)[None, :]
        scale = tl.load(s_ptr + rows[:, None] * stride_sn + g[None, :], ok, 0.0).to(tl.float32)
        low = tl.load(z_ptr + rows[:, None] * stride_sn + g[None, :], ok, 0.0).to(tl.float32)
        acc += scale * (part_g - scaled_g[None, :]) + low * x_g[None, :]
    y = tl.sum(acc, axis=1)
    _finish(y, squares, words_per_row * 8, eps, r_ptr, y_ptr + tl.program_id(1) * stride_ym, rows, row_ok, N, BLOCK_N,
            NORM, RESIDUAL, GLU)  # fmt: skip


@triton.autotune(configs=configs(), key=["N", "words_per_row", "NORM", "RESIDUAL", "GLU"], restore_value=["y_ptr"])
@WHOLE_BLOCKS
@triton.jit
def _int8_gemv(
    x_ptr, w_ptr, s_ptr, y_ptr, N, words_per_row, one, stride_xm, stride_wn, stride_ym,
    CHUNK: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_W: tl.constexpr, PREFETCH: tl.constexpr, EVEN_N: tl.constexpr,
    g_ptr=None, r_ptr=None, eps=0.0, NORM: tl.constexpr = False, RESIDUAL: tl.constexpr = False,
    GLU: tl.constexpr = False,
):  # fmt: skip
    """y[m, rows] for BLOCK_N rows, BLOCK_W words of each row per loop step (PREFETCH, NORM, RESIDUAL, GLU: as
    _int4_gemv)."""
    PER: tl.constexpr = CHUNK // 4  # words per chunk
    rows, row_ok, cols, x_row, w_at = _program(x_ptr, w_ptr, N, stride_xm, stride_wn, BLOCK_N, BLOCK_W, EVEN_N)
    acc = tl.zeros([BLOCK_N, BLOCK_W], dtype=tl.float32)
    x_total = tl.zeros([BLOCK_W], dtype=tl.float32)
    squares = tl.zeros([BLOCK_W], dtype=tl.float32)
    upcoming = _first_words(w_at, row_ok, cols, words_per_row, BLOCK_N, BLOCK_W, PREFETCH)
    for w0 in range(0, words_per_row, BLOCK_W):
        step = _step(w_at, w0, upcoming, row_ok, cols, words_per_row, PER, CHUNK, BLOCK_W, PREFETCH)
        c_ok, words, upcoming, x_at = step
        # inputs of bytes 0..3 (to bits 7-14, 15-22, 7-14, 15-22), loaded first: the step's sum starts at minus the
        # offsets its products carry (65536 x and 256 x), so they cancel within the step, not over the whole row,
        # whatever the inputs' mean
        x0 = tl.load(x_row + x_at, c_ok, 0.0).to(tl.float32)
        x1 = tl.load(x_row + x_at + PER, c_ok, 0.0).to(tl.float32)
        x2 = tl.load(x_row + x_at + 2 * PER, c_ok, 0.0).to(tl.float32)
        x3 = tl.load(x_row + x_at + 3 * PER, c_ok, 0.0).to(tl.float32)
        if NORM:
            squares += x0 * x0 + x1 * x1 + x2 * x2 + x3 * x3
            x0 = x0 * tl.load(g_ptr + x_at, c_ok, 0.0).to(tl.float32)
            x1 = x1 * tl.load(g_ptr + x_at + PER, c_ok, 0.0).to(tl.float32)
            x2 = x2 * tl.load(g_ptr + x_at + 2 * PER, c_ok, 0.0).to(tl.float32)
            x3 = x3 * tl.load(g_ptr + x_at + 3 * PER, c_ok, 0.0).to(tl.float32)
        part = tl.zeros([BLOCK_N, BLOCK_W], dtype=tl.float32) - (65536.0 * (x0 + x2) + 256.0 * (x1 + x3))[None, :]
        low01, low23 = _shifted(words, 7), _shifted(words, -9)
        part += _as_float(low01, INT8_LOW, one) * (x0 * 65536.0)[None, :]
        part += _as_float(low01, INT8_HIGH, one) * (x1 * 256.0)[None, :]
        part += _as_float(low23, INT8_LOW, one) * (x2 * 65536.0)[None, :]
        part += _as_float(low23, INT8_HIGH, one) * (x3 * 256.0)[None, :]
        acc += part
        x_total += x0 + x1 + x2 + x3
    # acc: the sum of stored * x, stored = level + 128
    dot = tl.sum(acc, axis=1) - 128.0 * tl.sum(x_total, axis=0)
    y = dot * tl.load(s_ptr + rows, row_ok, 0.0).to(tl.float32)
    _finish(y, squares, words_per_row * 4, eps, r_ptr, y_ptr + tl.program_id(1) * stride_ym, rows, row_ok, N, BLOCK_N,
            NORM, RESIDUAL, GLU)  # fmt: skip


def _launch_shapes(x: torch.Tensor, n: int):
    """x as (rows, in), contiguous; the (rows, n) output in x's dtype; the grid: row blocks x rows of x."""
    x2 = x.reshape(-1, x.shape[-1]).contiguous()
    y = torch.empty(x2.shape[0], n, device=x.device, dtype=x.dtype)
    return x2, y, lambda meta: (triton.cdiv(n, meta["BLOCK_N"]), x2.shape[0])


def int4_gemv(x: torch.Tensor, words: torch.Tensor, scale: torch.Tensor, low: torch.Tensor, group_size: int):
    """x (..., in) @ W.T with W in pack_int4's layout -> (..., out) in x's dtype; one program column per row of x."""
    check_int4_operands(x, words, scale, low, group_size)
    n = words.shape[0]
    x2, y, grid = _launch_shapes(x, n)
    _int4_gemv[grid](
        x2,
        words,
        scale,
        low,
        y,
        n,
        words.shape[1],
        scale.shape[1],
        ONE_BITS,
        x2.stride(0),
        words.stride(0),
        scale.stride(0),
        y.stride(0),
        GROUP=group_size,
    )
    return y.reshape(*x.shape[:-1], n)


def int8_gemv(x: torch.Tensor, words: torch.Tensor, scale: torch.Tensor):
    """x (..., in) @ W.T with W in pack_int8's layout -> (..., out) in x's dtype."""
    check_int8_operands(x, words, scale)
    n = words.shape[0]
    x2, y, grid = _launch_shapes(x, n)
    _int8_gemv[grid](
        x2, words, scale, y, n, words.shape[1], ONE_BITS, x2.stride(0), words.stride(0), y.stride(0), CHUNK=INT8_CHUNK
    )
    return y.reshape(*x.shape[:-1], n)


def _one_epilogue(glu: bool, residual) -> None:
    if glu and residual is not None:
        raise ValueError("the kernels' SiLU * up epilogue takes no residual (the decode step never adds one there)")


def int4_gemv_into(x, words, scale, low, group_size, y, *, norm=None, eps=0.0, residual=None, glu=False) -> None:
    """The fused decode step's call (runner/fused_decode/): one row x (in,) into y, with the RMS norm's weight
    `norm` applied to x first, `residual` added, or (glu) words whose rows alternate gate and up giving
    y = SiLU(gate) * up of len(words) / 2 (no residual then)."""
    _one_epilogue(glu, residual)
    n = words.shape[0]
    _int4_gemv[lambda meta: (triton.cdiv(n, meta["BLOCK_N"]), 1)](
        x, words, scale, low, y, n, words.shape[1], scale.shape[1], ONE_BITS, 0, words.stride(0), scale.stride(0), 0,
        GROUP=group_size, g_ptr=norm, r_ptr=residual, eps=eps, NORM=norm is not None, RESIDUAL=residual is not None,
        GLU=glu,
    )  # fmt: skip


def int8_gemv_into(x, words, scale, y, *, norm=None, eps=0.0, residual=None, glu=False) -> None:
    """int4_gemv_into for int8 words."""
    _one_epilogue(glu, residual)
    n = words.shape[0]
    _int8_gemv[lambda meta: (triton.cdiv(n, meta["BLOCK_N"]), 1)](
        x, words, scale, y, n, words.shape[1], ONE_BITS, 0, words.stride(0), 0, CHUNK=INT8_CHUNK, g_ptr=norm,
        r_ptr=residual, eps=eps, NORM=norm is not None, RESIDUAL=residual is not None, GLU=glu,
    )  # fmt: skip
