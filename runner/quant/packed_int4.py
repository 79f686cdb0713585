"""`quant=int4wo quant.int4_packing_format=inductor`: a 4-bit weight layout that no kernel library has to support.

Two 4-bit values per byte (the even input first, in the low nibble), with a scale and zero point per group of
`group_size` inputs, in the model's dtype. The Linear's forward unpacks and dequantizes in plain PyTorch ops
(`dequantize`), so under `convert.compile=true` inductor fuses unpacking, dequantization and the matrix-vector
product of a batch-1 decode step into one Triton kernel that reads half a byte per weight; without compiling it
runs anywhere, the CPU included. torchao 0.18's int4 layouts each need one kernel: tinygemm (slow on Hopper:
docs/benchmarks.md §6), or the `mslk` package (not published). The layout is a torchao tensor subclass
(TorchAOBaseTensor) applied by torchao's `quantize_` through transformers' TorchAoConfig, so the census, the real
byte count and `convert.compile_options.unwrap_subclasses` treat it as any torchao weight.

Quantization is asymmetric min/max per group (torchao's tinygemm parameters use the same grid: 16 levels from the
group's minimum to its maximum)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchao.core.config import AOBaseConfig
from torchao.quantization.transform_module import register_quantize_module_handler

from runner.quant.dequantizing_weight import DequantizingWeight, registers_ops
from runner.quant.int4_grid import levels


def unpack(packed: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, group_size: int) -> torch.Tensor:
    """The (out, in) weight, in the scale's dtype, from two levels per byte (even input in the low nibble)."""
    out = packed.shape[0]
    q = torch.stack((packed & 0xF, packed >> 4), dim=2).reshape(out, -1, group_size)
    return (q.to(scale.dtype) * scale.unsqueeze(2) + zero.unsqueeze(2)).reshape(out, -1)


@registers_ops
class PackedInt4Tensor(DequantizingWeight):
    """A (out, in) weight as `packed` (out, in / 2) uint8, `scale` and `zero` (out, in / group_size)."""

    tensor_data_names = ["packed", "scale", "zero"]
    tensor_attribute_names = ["group_size", "shape_", "dtype"]

    @classmethod
    def from_hp(cls, weight: torch.Tensor, group_size: int) -> PackedInt4Tensor:
        q, scale, low = levels(weight, group_size)
        packed = q[:, 0::2] | (q[:, 1::2] << 4)
        return cls(packed, scale.to(weight.dtype), low.to(weight.dtype), group_size, weight.shape, weight.dtype)

    def dequantize(self, output_dtype: torch.dtype | None = None) -> torch.Tensor:
        return unpack(self.packed, self.scale, self.zero, self.group_size).to(output_dtype or self.dtype)


@dataclass
class PackedInt4Config(AOBaseConfig):
    """torchao config of the layout (TorchAoConfig(quant_type=PackedInt4Config(group_size=...)))."""

    group_size: int = 128


@register_quantize_module_handler(PackedInt4Config)
def _packed_int4_transform(module: torch.nn.Module, config: PackedInt4Config, *, parameter_name: str = "weight"):
    weight = getattr(module, parameter_name)
    if weight.shape[-1] % config.group_size:  # torchao's int4 configs leave such layers as they are too
        return module
    packed = PackedInt4Tensor.from_hp(weight.detach(), config.group_size)
    setattr(module, parameter_name, torch.nn.Parameter(packed, requires_grad=False))
    return module


torch.serialization.add_safe_globals([PackedInt4Tensor])
