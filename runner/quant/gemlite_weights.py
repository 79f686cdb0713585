"""gemlite's Triton kernels for int4 and int8 weights as a torchao weight (quant=int4wo_gemlite, int8wo_gemlite).

gemlite (Mobius Labs) packs low-bit weights for Triton matrix-vector kernels written for one-row products (its
GEMV_REVSPLITK kernel for 4 bits, GEMV_SPLITK for 8) and GEMM kernels for larger batches, each picked by the number
of rows and autotuned per shape on first use. torchao 0.18 holds such a weight in its prototype
`UIntxBitPackedTensor`, whose Linear calls gemlite's `forward_functional` custom op (so the compiled decode step
keeps it as one opaque call). torchao's own `UIntxWeightOnlyConfig` cannot build it on this stack: it unpacks three
tensors from gemlite 0.6's `get_tensor_args()`, which returns four (the fourth is the NVFP4 meta scale), and its HQQ
scales come out in float16 whatever the model's dtype, which a bfloat16 model's kernels refuse
(docs/quantization.md). `GemliteConfig` builds the same tensor from gemlite's own packing: int4 scales and zero
points in the model's dtype, int8 scales in float32 (gemlite's A16W8 keeps them so).

Quantization: int8 symmetric with one scale per output row (gemlite's A16W8); int4 asymmetric in groups of
`group_size` inputs, with HQQ-optimized scales and zero points (`hqq=True`, torchao's HQQ solver, as torchao's
prototype does) or the plain min/max grid; a weight is (q - zero) * scale. gemlite's kernels run on CUDA only."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchao.core.config import AOBaseConfig
from torchao.quantization.transform_module import register_quantize_module_handler

from runner.quant.int4_grid import levels


def int4_levels(weight: torch.Tensor, group_size: int, hqq: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(q, scale, zero): q (out, in) uint8 0..15, scale and zero (out, in / group_size) in the weight's dtype, with
    weight ~ (q - zero) * scale."""
    if hqq:
        from torchao.quantization.quant_primitives import _choose_qparams_and_quantize_affine_hqq

        q, scale, zero, _ = _choose_qparams_and_quantize_affine_hqq(
            weight, nbits=4, group_size=group_size, compute_dtype=weight.dtype, device=str(weight.device),
            raw_output=True,
        )  # fmt: skip
        return q, scale, zero
    q, scale, low = levels(weight, group_size)
    # the zero point from the scale as the kernel will read it: a float32 scale that rounds to 0 in float16 (a
    # constant group) would make it infinite
    scale = scale.to(weight.dtype).clamp(min=torch.finfo(weight.dtype).tiny)
    return q, scale, (-low / scale.float()).to(weight.dtype)


def gemlite_weight(weight: torch.Tensor, bits: int, group_size: int | None, hqq: bool = True):
    """`weight` (out, in), float16 or bfloat16 on a CUDA device, as torchao's gemlite-backed UIntxBitPackedTensor;
    `group_size` for 4 bits (int8 has one scale per output row)."""
    import gemlite
    from torchao.prototype.quantization.uintx.uintx_bit_packed_tensor import UIntxBitPackedTensor

    out, k = weight.shape
    if bits == 8:
        group_size = k
        packed = gemlite.helper.A16W8_INT8(device=weight.device, dtype=weight.dtype).from_weights(weight)
    else:
        q, scale, zero = int4_levels(weight, group_size, hqq)
        packed = gemlite.helper.A16Wn(device=weight.device, dtype=weight.dtype).from_weights(
            q, scale, zero, bits, group_size
        )
    # the fourth, the NVFP4 meta scale, is not read for INT; symmetric int8's zero point is gemlite's empty tensor
    qdata, scale, zero = packed.get_tensor_args()[:3]
    meta = {
        "in_features": k,
        "out_features": out,
        "packing_bitwidth": None,
        "data_contiguous": packed.data_contiguous,
        "elements_per_sample": packed.elements_per_sample,
        "W_group_mode": packed.W_group_mode,
        "meta_args": packed.get_meta_args(),
    }
    return UIntxBitPackedTensor(qdata, scale, zero, meta, bits, group_size, weight.dtype)


@dataclass
class GemliteConfig(AOBaseConfig):
    """torchao config (TorchAoConfig(quant_type=GemliteConfig(...))): `bits` 4 or 8; `group_size` for 4 bits (None
    for 8: a scale per output row)."""

    bits: int = 4
    group_size: int | None = 128
    hqq: bool = True


@register_quantize_module_handler(GemliteConfig)
def _gemlite_transform(module: torch.nn.Module, config: GemliteConfig, *, parameter_name: str = "weight"):
    weight = getattr(module, parameter_name)
    if config.bits == 4 and weight.shape[-1] % config.group_size:  # as torchao's int4 configs, left as it is
        return module
    packed = gemlite_weight(weight.detach(), config.bits, config.group_size, config.hqq)
    setattr(module, parameter_name, torch.nn.Parameter(packed, requires_grad=False))
    return module
