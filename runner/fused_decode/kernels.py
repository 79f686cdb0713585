"""The Triton kernels of the fused decode step (runner/fused_decode/decoder.py): five a layer, two a token after the
last layer. Each can be launched with Hopper's programmatic dependent launch (PDL); the decoder does not by default,
as the step ran 4 % slower with it on the H200 (docs/benchmarks.md §6s). A layer's products over the runner's int4 or
int8 words (`Packed`, quant=int4wo_triton / int8wo_triton) run runner/quant/triton_gemv.py's kernels with the same
norm, residual and SiLU * up options.

- `_gemv`: y = W x for one row of x, BLOCK_N rows of W a program. NORM: x is RMS-normalized on the way in (x * g in
  the loop, the sum of squares beside it, 1 / rms applied to the finished dot products: no second pass over x);
  GLU: W holds gate rows then up rows (`up_offset` elements apart) and the program writes SiLU(gate) * up for its
  rows; RESIDUAL: y + r. With PDL each program lets the next kernel start at once and loads its first weight tile
  before it waits for the kernel in front (griddepcontrol.wait): weights never depend on that kernel, only x does.
  In isolation this reads the 7B step's products at 86 % of the H200's bandwidth against 81 % for inductor's
  kernels (scripts/gpu/pdl_probe.py, docs/benchmarks.md §6r).
- `_attend`: one new token's attention over the KV cache, one program per key/value head and all the query heads
  that share it: rotary embedding of q and of the new key (the table's row at the token's position), the cache
  read in blocks with an online softmax, the new key and value written to the cache at the end.
- `_pick`: the greedy token (end-of-sequence ids excluded, the first index of the largest logit, as torch.argmax),
  written to the token buffer, its embedding row becoming the next step's hidden state, and the position advanced.

Rounding follows Transformers' bf16 forward where it is cheap to (each product rounded to the model's dtype before
the residual add and before SiLU, the rotated key rounded before it is cached); the RMS norm is applied in float32
to the dot products rather than rounded on the input, so results agree to bf16 rounding, not bit for bit.
Importing this module needs Triton; TRITON_INTERPRET=1 runs the kernels on the CPU (without PDL) for tests."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl


@triton.jit
def _gemv(
    x_ptr, w_ptr, g_ptr, r_ptr, y_ptr, N, K, stride_wn, up_offset, eps,
    BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, NORM: tl.constexpr, GLU: tl.constexpr, RESIDUAL: tl.constexpr,
    PDL: tl.constexpr,
):  # fmt: skip
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < N
    cols = tl.arange(0, BLOCK_K)
    w_at = w_ptr + rows[:, None] * stride_wn + cols[None, :]
    first = row_ok[:, None] & (cols < K)[None, :]
    if PDL:
        tl.extra.cuda.gdc_launch_dependents()
    w = tl.load(w_at, first, 0.0, eviction_policy="evict_first")
    if GLU:
        u = tl.load(w_at + up_offset, first, 0.0, eviction_policy="evict_first")
    if PDL:
        tl.extra.cuda.gdc_wait()
    acc = tl.zeros([BLOCK_N, BLOCK_K], dtype=tl.float32)
    acc_up = tl.zeros([BLOCK_N, BLOCK_K], dtype=tl.float32)
    squares = tl.zeros([BLOCK_K], dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        c = k0 + cols
        if k0 > 0:
            mask = row_ok[:, None] & (c < K)[None, :]
            w = tl.load(w_at + k0, mask, 0.0, eviction_policy="evict_first")
            if GLU:
                u = tl.load(w_at + up_offset + k0, mask, 0.0, eviction_policy="evict_first")
        x = tl.load(x_ptr + c, c < K, 0.0).to(tl.float32)
        if NORM:
            squares += x * x
            x = x * tl.load(g_ptr + c, c < K, 0.0).to(tl.float32)
        acc += w.to(tl.float32) * x[None, :]
        if GLU:
            acc_up += u.to(tl.float32) * x[None, :]
    y = tl.sum(acc, axis=1)
    if NORM:
        inverse_rms = tl.rsqrt(tl.sum(squares, axis=0) / K + eps)
        y = y * inverse_rms
    out = y_ptr.dtype.element_ty
    if GLU:
        up = tl.sum(acc_up, axis=1)
        if NORM:
            up = up * inverse_rms
        gate = y.to(out).to(tl.float32)
        silu = (gate * tl.sigmoid(gate)).to(out).to(tl.float32)
        y = silu * up.to(out).to(tl.float32)
    if RESIDUAL:
        y = y.to(out).to(tl.float32) + tl.load(r_ptr + rows, row_ok, 0.0).to(tl.float32)
    tl.store(y_ptr + rows, y.to(out), row_ok)


@triton.jit
def _attend(
    qkv_ptr, cos_ptr, sin_ptr, k_cache, v_cache, o_ptr, pos_ptr, scale, stride_head, stride_pos, part_m, part_l,
    part_acc, arrived,
    Q_HEADS: tl.constexpr, KV_HEADS: tl.constexpr, GROUP: tl.constexpr, GROUP_P2: tl.constexpr, D: tl.constexpr,
    BLOCK_T: tl.constexpr, SPLITS: tl.constexpr, STAGES: tl.constexpr, PDL: tl.constexpr,
):  # fmt: skip
    kv = tl.program_id(0)
    split = tl.program_id(1)
    if PDL:
        tl.extra.cuda.gdc_launch_dependents()
        tl.extra.cuda.gdc_wait()
    pos = tl.load(pos_ptr)
    d = tl.arange(0, D)
    swapped = (d + D // 2) % D  # rotate_half: (-x2, x1)
    sign = tl.where(d < D // 2, -1.0, 1.0)
    cos = tl.load(cos_ptr + pos * D + d).to(tl.float32)
    sin = tl.load(sin_ptr + pos * D + d).to(tl.float32)
    dtype = k_cache.dtype.element_ty

    g = tl.arange(0, GROUP_P2)
    g_ok = g < GROUP
    q_at = qkv_ptr + (kv * GROUP + g)[:, None] * D
    q = tl.load(q_at + d[None, :], g_ok[:, None], 0.0).to(tl.float32)
    q_half = tl.load(q_at + swapped[None, :], g_ok[:, None], 0.0).to(tl.float32)
    q = (q * cos[None, :] + sign[None, :] * q_half * sin[None, :]).to(dtype).to(tl.float32)

    # this program's share of the cached positions [0, pos): a whole number of blocks
    share = tl.cdiv(tl.cdiv(pos, SPLITS), BLOCK_T) * BLOCK_T
    low = split * share
    high = tl.minimum(low + share, pos)
    best = tl.full([GROUP_P2], float("-inf"), tl.float32)
    total = tl.zeros([GROUP_P2], dtype=tl.float32)
    acc = tl.zeros([GROUP_P2, D], dtype=tl.float32)
    t = tl.arange(0, BLOCK_T)
    cache_at = kv * stride_head + d[None, :]
    for t0 in tl.range(low, high, BLOCK_T, num_stages=STAGES):  # the next blocks' loads in flight (pipelined)
        tt = t0 + t
        t_ok = tt < high
        k = tl.load(k_cache + cache_at + tt[:, None] * stride_pos, t_ok[:, None], 0.0).to(tl.float32)
        v = tl.load(v_cache + cache_at + tt[:, None] * stride_pos, t_ok[:, None], 0.0).to(tl.float32)
        s = tl.sum(q[:, None, :] * k[None, :, :], axis=2) * scale
        s = tl.where(t_ok[None, :], s, float("-inf"))
        top = tl.maximum(best, tl.max(s, axis=1))
        p = tl.exp(s - top[:, None])
        alpha = tl.exp(best - top)
        total = total * alpha + tl.sum(p, axis=1)
        acc = acc * alpha[:, None] + tl.sum(p[:, :, None] * v[None, :, :], axis=1)
        best = top
    if split == SPLITS - 1:  # the last share also holds the new token, which it rotates and caches
        k_at = qkv_ptr + Q_HEADS * D + kv * D
        v_at = qkv_ptr + (Q_HEADS + KV_HEADS) * D + kv * D
        k_new = tl.load(k_at + d).to(tl.float32)
        k_new = (k_new * cos + sign * tl.load(k_at + swapped).to(tl.float32) * sin).to(dtype)
        v_new = tl.load(v_at + d)
        s_new = tl.sum(q * k_new.to(tl.float32)[None, :], axis=1) * scale
        top = tl.maximum(best, s_new)
        p_new = tl.exp(s_new - top)
        alpha = tl.exp(best - top)
        total = total * alpha + p_new
        acc = acc * alpha[:, None] + p_new[:, None] * v_new.to(tl.float32)[None, :]
        best = top
        tl.store(k_cache + kv * stride_head + pos * stride_pos + d, k_new)
        tl.store(v_cache + kv * stride_head + pos * stride_pos + d, v_new)
    out_at = o_ptr + (kv * GROUP + g)[:, None] * D + d[None, :]
    if SPLITS == 1:
        tl.store(out_at, (acc / total[:, None]).to(dtype), g_ok[:, None])
    else:  # each share's (max, sum, weighted values) to scratch; the last program of the head to arrive merges them
        at = (kv * SPLITS + split) * GROUP_P2 + g
        tl.store(part_m + at, best)
        tl.store(part_l + at, total)
        tl.store(part_acc + at[:, None] * D + d[None, :], acc)
        tl.debug_barrier()
        if tl.atomic_add(arrived + kv, 1, sem="acq_rel") == SPLITS - 1:
            parts = (kv * SPLITS + tl.arange(0, SPLITS))[:, None] * GROUP_P2 + g[None, :]  # (SPLITS, GROUP_P2)
            m = tl.load(part_m + parts, cache_modifier=".cg")
            top = tl.max(m, axis=0)
            weight = tl.exp(m - top[None, :])
            total = tl.sum(weight * tl.load(part_l + parts, cache_modifier=".cg"), axis=0)
            accs = tl.load(part_acc + parts[:, :, None] * D + d[None, None, :], cache_modifier=".cg")
            acc = tl.sum(weight[:, :, None] * accs, axis=0)
            tl.store(out_at, (acc / total[:, None]).to(dtype), g_ok[:, None])
            tl.store(arrived + kv, 0)  # ready for the next layer


@triton.jit
def _pick(
    logits_ptr, V, eos_ptr, n_eos, embed_ptr, stride_embed, H, h_ptr, ids_ptr, pos_ptr,
    BLOCK_V: tl.constexpr, BLOCK_H: tl.constexpr, PDL: tl.constexpr,
):  # fmt: skip
    if PDL:
        tl.extra.cuda.gdc_launch_dependents()
        tl.extra.cuda.gdc_wait()
    pos = tl.load(pos_ptr)
    v = tl.arange(0, BLOCK_V)
    best = tl.full([], float("-inf"), tl.float32)
    index = tl.full([], 0, tl.int32)
    for v0 in range(0, V, BLOCK_V):
        at = v0 + v
        x = tl.load(logits_ptr + at, at < V, float("-inf")).to(tl.float32)
        for e in range(n_eos):
            x = tl.where(at == tl.load(eos_ptr + e), float("-inf"), x)
        top = tl.max(x, axis=0)
        first = tl.min(tl.where(x == top, at, V), axis=0)
        index = tl.where(top > best, first, index)
        best = tl.maximum(best, top)
    tl.store(ids_ptr + pos + 1, index.to(tl.int64))
    h = tl.arange(0, BLOCK_H)
    for h0 in range(0, H, BLOCK_H):
        at = h0 + h
        tl.store(h_ptr + at, tl.load(embed_ptr + index.to(tl.int64) * stride_embed + at, at < H), at < H)
    tl.store(pos_ptr, pos + 1)


def _launch(pdl: bool) -> dict:
    return {"launch_pdl": True} if pdl else {}


@dataclass(frozen=True)
class Packed:
    """A weight in the runner's int4 or int8 word layout (runner/quant/triton_weights.py): its packed tensors, for
    the kernels of runner/quant/triton_gemv.py; a gate/up weight's rows interleaved (gate_i, up_i) by `prepare`."""

    bits: int
    tensors: tuple
    group_size: int | None = None


def _interleaved(t: torch.Tensor) -> torch.Tensor:
    """Rows [gate rows; up rows] -> gate_0, up_0, gate_1, up_1, ... (a copy)."""
    half = t.shape[0] // 2
    return torch.stack([t[:half], t[half:]], dim=1).reshape(t.shape)


def prepare(weight: torch.Tensor, glu: bool = False):
    """What `gemv` takes for a model's weight: a plain tensor as it is (gate rows then up rows for glu), a runner
    int4/int8 weight as Packed (for glu its rows interleaved, a copy: the quantized kernels pair rows in their
    epilogue)."""
    from runner.quant.triton_weights import KernelWeight, TritonInt4Tensor

    data = weight.data if isinstance(weight, torch.nn.Parameter) else weight
    if not isinstance(data, KernelWeight):
        return data
    tensors, attributes = data._parts()
    if glu:
        tensors = [_interleaved(t) for t in tensors]
    if isinstance(data, TritonInt4Tensor):
        return Packed(4, tuple(tensors), attributes[0])
    return Packed(8, tuple(tensors))


def gemv(x, w, y, config, *, norm=None, eps=0.0, glu=False, residual=None, pdl=False) -> None:
    """y = W x (rows of W: y's length; with glu, W holds 2 * len(y) rows, gate then up, and y = SiLU(gate) * up);
    norm: the RMS norm's weight applied to x first; residual: added to the product. config: (BLOCK_N, BLOCK_K,
    warps). A Packed weight runs runner/quant/triton_gemv.py's int4 or int8 kernel with the same options (its own
    configs, pinned or autotuned; no PDL)."""
    if isinstance(w, Packed):
        from runner.quant import triton_gemv

        options = {"norm": norm, "eps": eps, "residual": residual, "glu": glu}
        if w.bits == 4:
            triton_gemv.int4_gemv_into(x, *w.tensors, w.group_size, y, **options)
        else:
            triton_gemv.int8_gemv_into(x, *w.tensors, y, **options)
        return
    n = y.shape[0]
    block_n, block_k, warps = config
    _gemv[(triton.cdiv(n, block_n),)](
        x, w, norm if norm is not None else x, residual if residual is not None else y, y, n, w.shape[1],
        w.stride(0), n * w.stride(0) if glu else 0, eps, BLOCK_N=block_n, BLOCK_K=block_k, NORM=norm is not None,
        GLU=glu, RESIDUAL=residual is not None, PDL=pdl, num_warps=warps, **_launch(pdl),
    )  # fmt: skip


def attend(qkv, cos, sin, k_cache, v_cache, out, pos, scale, q_heads, kv_heads, head_dim, pdl=False, config=None,
           scratch=None) -> None:  # fmt: skip
    """out (q_heads * head_dim) = attention of the token whose q, k and v are in qkv, at position pos[0], over
    k_cache / v_cache (kv_heads, positions, head_dim) up to that position; the new key and value are cached.
    config: (positions a block, shares of the cache a head, pipeline stages, warps), attend_config's by default;
    scratch: attend_scratch's buffers for that many shares (made here when not given)."""
    group = q_heads // kv_heads
    block_t, splits, stages, warps = config or attend_config(head_dim, group, kv_heads)
    part_m, part_l, part_acc, arrived = scratch or attend_scratch(kv_heads, group, head_dim, splits, qkv.device)
    _attend[(kv_heads, splits)](
        qkv, cos, sin, k_cache, v_cache, out, pos, scale, k_cache.stride(0), k_cache.stride(1), part_m, part_l,
        part_acc, arrived, Q_HEADS=q_heads, KV_HEADS=kv_heads, GROUP=group, GROUP_P2=triton.next_power_of_2(group),
        D=head_dim, BLOCK_T=block_t, SPLITS=splits, STAGES=stages, PDL=pdl, num_warps=warps, **_launch(pdl),
    )  # fmt: skip


def attend_config(head_dim: int, group: int, kv_heads: int) -> tuple[int, int, int, int]:
    """(positions a block, shares of the cache a head, pipeline stages, warps): about 128 programs in all (the H200
    has 132 SMs), at most 16 shares a head, 16 positions a block for 128-wide heads, three stages (the H200's pick
    for the 7B shapes at position 192: (16, 4, 3, 4), 6.4 us a layer against 9.9 unsplit, docs/benchmarks.md §6s)."""
    splits = min(16, triton.next_power_of_2(max(1, 128 // kv_heads)))
    return (max(16, 2048 // (head_dim * triton.next_power_of_2(group))), splits, 3, 4)


def attend_scratch(kv_heads: int, group: int, head_dim: int, splits: int, device) -> tuple[torch.Tensor, ...]:
    """The shares' partial results (max, sum, weighted values) and each head's count of arrived shares (zeros: the
    kernel leaves them at zero)."""
    rows = kv_heads * splits * triton.next_power_of_2(group)
    f32 = {"dtype": torch.float32, "device": device}
    return (torch.empty(rows, **f32), torch.empty(rows, **f32), torch.empty(rows, head_dim, **f32),
            torch.zeros(kv_heads, dtype=torch.int32, device=device))  # fmt: skip


def pick(logits, eos, n_eos, embed, h, ids, pos, pdl=False) -> None:
    """ids[pos + 1] = the greedy token of logits (the first n_eos ids of eos excluded); h = its embedding row;
    pos += 1."""
    _pick[(1,)](
        logits, logits.shape[0], eos, n_eos, embed, embed.stride(0), h.shape[0], h, ids, pos,
        BLOCK_V=4096, BLOCK_H=min(4096, triton.next_power_of_2(h.shape[0])), PDL=pdl, num_warps=8, **_launch(pdl),
    )  # fmt: skip


def gemv_config(k: int, glu: bool = False, norm: bool = False) -> tuple[int, int, int]:
    """(BLOCK_N, BLOCK_K, warps) for a product over `k` inputs: the picks of `fused_decode_profile.py --tune` on the
    H200 for the 7B shapes inside the step (docs/benchmarks.md §6s): q/k/v and lm_head with the norm (4, 512, 4),
    gate/up with the norm and SiLU * up (2, 512, 4), o_proj and down with the residual (8, 1024, 4). Smaller inputs
    take tiles of their whole width."""
    tile = lambda most: min(most, triton.next_power_of_2(k))  # noqa: E731
    if glu:
        return (2, tile(512), 4)
    if norm:
        return (4, tile(512), 4)
    return (8, tile(1024), 4)


def pdl_available(device: torch.device) -> bool:
    """Programmatic dependent launch: Hopper (compute capability 9.0) or newer."""
    return device.type == "cuda" and torch.cuda.get_device_capability(device)[0] >= 9
