"""Weight layouts for the runner's Triton matrix-vector kernels (runner/quant/triton_gemv.py), in plain PyTorch.

Both pack their levels into int32 words, so that a kernel loads 16 bytes at a time and turns each level into a float
with bit operations (a level's bits ORed into the mantissa of 1.0 read as a float are 1 + level / 2**n) instead of
an integer-to-float conversion, which Hopper runs at 16 per clock and SM, an eighth of its fused multiply-adds.

- int4: a group of `group_size` inputs is `group_size / 8` words; nibble `i` of word `j` holds input
  `i * group_size / 8 + j` of the group. A scale and a minimum per group and output row: weight = level * scale +
  minimum (16 levels from the group's minimum to its maximum: runner/quant/int4_grid.py).
- int8: symmetric levels -127..127 per output row with one scale (torchao Int8WeightOnlyConfig's scheme), stored
  as level + 128 in 0..255; a chunk of 32 inputs is 8 words, byte `i` of word `j` holds input `i * 8 + j` of the
  chunk.

Unpacking (`int4_weight`, `int8_weight`) is the reference the kernels are tested against, and the path for many
rows (a prefill) and for devices without the kernels."""

from __future__ import annotations

import torch

from runner.quant.int4_grid import levels

INT8_CHUNK = 32  # inputs per chunk of 8 words
INT4_GROUPS = (32, 64, 128, 256)  # the kernels read a group as 4 to 32 words, a power of two
NIBBLES = 8  # 4-bit levels per int32 word
BYTES = 4  # 8-bit levels per int32 word


def _to_words(q: torch.Tensor, span: int, width: int) -> torch.Tensor:
    """(out, in) levels, each < 2**width -> (out, in * width / 32) int32 words: within each run of `span` inputs, field
    i of word j (at bit i * width) holds input i * (span / per_word) + j, so consecutive words hold consecutive
    inputs in the same field (the kernels read a field's inputs as one contiguous run)."""
    out, k = q.shape
    per_word = 32 // width
    # (out, spans, field i, word j) -> (out, spans, word j, field i)
    fields = q.reshape(out, k // span, per_word, span // per_word).transpose(2, 3).reshape(out, k // per_word, per_word)
    shifts = torch.arange(per_word, device=q.device, dtype=torch.int64) * width
    value = (fields.to(torch.int64) << shifts).sum(-1)  # 0 .. 2**32 - 1
    return (value - ((value >> 31) << 32)).to(torch.int32)  # the same 32 bits as a signed word


def _from_words(words: torch.Tensor, span: int, width: int) -> torch.Tensor:
    """_to_words undone: (out, words) int32 -> (out, in) levels as int32."""
    out = words.shape[0]
    per_word = 32 // width
    shifts = torch.arange(per_word, device=words.device, dtype=torch.int32) * width
    fields = (words.unsqueeze(-1) >> shifts) & ((1 << width) - 1)
    return fields.reshape(out, -1, span // per_word, per_word).transpose(2, 3).reshape(out, -1)


def pack_int4(weight: torch.Tensor, group_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`weight` (out, in) -> words (out, in / 8) int32, scale and minimum (out, in / group_size) in its dtype."""
    if group_size not in INT4_GROUPS or weight.shape[1] % group_size:
        raise ValueError(
            f"int4 words take group_size {', '.join(map(str, INT4_GROUPS))} dividing the input size; got {group_size} "
            f"for {weight.shape[1]} inputs"
        )
    q, scale, low = levels(weight, group_size)
    return _to_words(q, group_size, 4), scale.to(weight.dtype), low.to(weight.dtype)


def int4_weight(words: torch.Tensor, scale: torch.Tensor, low: torch.Tensor, group_size: int) -> torch.Tensor:
    """The (out, in) weight in the scale's dtype, from pack_int4's words, scale and minimum."""
    out, groups = scale.shape
    q = _from_words(words, group_size, 4).reshape(out, groups, group_size)
    weight = q.to(scale.dtype) * scale[:, :, None] + low[:, :, None]
    return weight.reshape(out, groups * group_size)


def pack_int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`weight` (out, in) -> words (out, in / 4) int32 and a scale per output row in its dtype."""
    if weight.shape[1] % INT8_CHUNK:
        raise ValueError(f"int8 words need an input size that is a multiple of {INT8_CHUNK}, got {weight.shape[1]}")
    # the levels from the scale as it is stored (in the weight's dtype), so that level * stored scale is the nearest
    scale = (weight.float().abs().amax(dim=1) / 127).to(weight.dtype).clamp(min=torch.finfo(weight.dtype).tiny)
    q = torch.round(weight.float() / scale.float()[:, None]).clamp(-127, 127).to(torch.int32) + 128
    return _to_words(q, INT8_CHUNK, 8), scale


def int8_weight(words: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The (out, in) weight in the scale's dtype, from pack_int8's words and scales."""
    q = _from_words(words, INT8_CHUNK, 8) - 128
    return q.to(scale.dtype) * scale[:, None]


def check_int4_operands(x: torch.Tensor, words: torch.Tensor, scale: torch.Tensor, low: torch.Tensor, group_size: int):
    """What a kernel over pack_int4's layout needs of its operands (torch._check: fake tensors under compile too)."""
    torch._check(
        x.shape[-1] == words.shape[1] * NIBBLES,
        lambda: f"x has {x.shape[-1]} inputs, the weight {words.shape[1] * NIBBLES}",
    )
    torch._check(
        scale.shape == low.shape == (words.shape[0], words.shape[1] * NIBBLES // group_size),
        lambda: "scale and minimum must be (out, in / group_size)",
    )
    torch._check(
        words.is_contiguous() and scale.is_contiguous() and low.is_contiguous(),
        lambda: "int4 words, scale and minimum must be contiguous",
    )


def check_int8_operands(x: torch.Tensor, words: torch.Tensor, scale: torch.Tensor):
    """What a kernel over pack_int8's layout needs of its operands."""
    torch._check(
        x.shape[-1] == words.shape[1] * BYTES,
        lambda: f"x has {x.shape[-1]} inputs, the weight {words.shape[1] * BYTES}",
    )
    torch._check(scale.shape == (words.shape[0],), lambda: "scale must be (out,)")
    torch._check(words.is_contiguous() and scale.is_contiguous(), lambda: "int8 words and scale must be contiguous")
