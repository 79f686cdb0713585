"""The fused decode step's operations in PyTorch, with the signatures of runner/fused_decode/kernels.py and the same
arithmetic (float32 sums, the same roundings to the model's dtype): what the step runs on a CPU, and what the Triton
kernels are tested against. One operation a call, as the kernels are; `config` and `pdl` are accepted and unused."""

from __future__ import annotations

import torch


def prepare(weight: torch.Tensor, glu: bool = False) -> torch.Tensor:
    """A plain tensor as it is; a runner int4/int8 weight dequantized once (what Transformers' forward multiplies by
    on the CPU)."""
    from runner.quant.triton_weights import KernelWeight

    data = weight.data if isinstance(weight, torch.nn.Parameter) else weight
    return data.dequantize() if isinstance(data, KernelWeight) else data


def gemv(x, w, y, config=None, *, norm=None, eps=0.0, glu=False, residual=None, pdl=False) -> None:
    n = y.shape[0]
    x = x.float()
    scale = torch.rsqrt(x.pow(2).mean() + eps) if norm is not None else 1.0
    if norm is not None:
        x = x * norm.float()
    product = (w[:n].float() @ x) * scale
    if glu:
        up = ((w[n : 2 * n].float() @ x) * scale).to(y.dtype).float()
        gate = product.to(y.dtype).float()
        product = torch.nn.functional.silu(gate).to(y.dtype).float() * up
    if residual is not None:
        product = product.to(y.dtype).float() + residual.float()
    y.copy_(product)


def _rotated(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return x * cos + torch.cat([-x[..., half:], x[..., :half]], dim=-1) * sin


def attend(qkv, cos, sin, k_cache, v_cache, out, pos, scale, q_heads, kv_heads, head_dim, pdl=False, config=None,
           scratch=None) -> None:  # fmt: skip
    at = int(pos[0])
    dtype = k_cache.dtype
    c, s = cos[at].float(), sin[at].float()
    q = qkv[: q_heads * head_dim].float().view(q_heads, head_dim)
    k, v = qkv[q_heads * head_dim :].view(2, kv_heads, head_dim)
    q = _rotated(q, c, s).to(dtype).float()
    k_cache[:, at] = _rotated(k.float(), c, s).to(dtype)
    v_cache[:, at] = v
    keys = k_cache[:, : at + 1].float().repeat_interleave(q_heads // kv_heads, dim=0)  # (q_heads, at + 1, head_dim)
    values = v_cache[:, : at + 1].float().repeat_interleave(q_heads // kv_heads, dim=0)
    weights = torch.softmax((keys @ q.unsqueeze(-1)).squeeze(-1) * scale, dim=-1)
    out.copy_((weights.unsqueeze(1) @ values).reshape(-1))


def pick(logits, eos, n_eos, embed, h, ids, pos, pdl=False) -> None:
    scores = logits.float().clone()
    eos = eos[:n_eos]
    scores[eos[(eos >= 0) & (eos < scores.shape[0])]] = float("-inf")
    token = int(scores.argmax())
    at = int(pos[0])
    ids[at + 1] = token
    h.copy_(embed[token])
    pos += 1
