"""The runner's 4-bit grid, in plain PyTorch: 16 levels per group of inputs, from the group's minimum to its maximum
(asymmetric min/max, the grid torchao's tinygemm parameters use). Shared by the runner's int4 layouts
(packed_int4.py, word_packing.py) and gemlite's min/max option (gemlite_weights.py)."""

from __future__ import annotations

import torch

LEVELS = 15  # 4 bits: 0..15


def levels(weight: torch.Tensor, group_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`weight` (out, in) on 16 levels per group: the levels (out, in) as uint8 0..15, and each group's scale and
    minimum (out, in / group_size) in float32; a weight is level * scale + minimum."""
    out, k = weight.shape
    w = weight.float().reshape(out, k // group_size, group_size)
    low, high = w.amin(dim=2, keepdim=True), w.amax(dim=2, keepdim=True)
    scale = ((high - low) / LEVELS).clamp(min=torch.finfo(torch.float32).tiny)
    q = torch.round((w - low) / scale).clamp(0, LEVELS).to(torch.uint8).reshape(out, k)
    return q, scale.squeeze(2), low.squeeze(2)
