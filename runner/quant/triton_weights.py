"""The runner's int4 and int8 weights for its own Triton kernels (quant=int4wo_triton, int8wo_triton), as torchao
tensor subclasses applied by torchao's `quantize_` through transformers' TorchAoConfig.

A weight holds its levels in int32 words (runner/quant/word_packing.py): int4 with a scale and a minimum per group
of `group_size` inputs, int8 with a scale per output row. A Linear over it calls the runner's matrix-vector kernel
(runner/quant/triton_gemv.py through the custom ops of triton_ops.py, so a compiled decode step keeps each as one
call) when its input is on a CUDA GPU and has at most triton_ops.KERNEL_ROWS rows: a decode step. Anywhere
else (a prefill, the CPU) it dequantizes the weight in PyTorch ops and multiplies in the input's dtype, so the
method runs on every device and its layers are tested on the CPU."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchao.core.config import AOBaseConfig
from torchao.quantization.transform_module import register_quantize_module_handler

from runner.quant.dequantizing_weight import DequantizingWeight, registers_ops
from runner.quant.triton_ops import runs_kernel
from runner.quant.word_packing import INT4_GROUPS, INT8_CHUNK, int4_weight, int8_weight, pack_int4, pack_int8


def int4_product(x: torch.Tensor, words: torch.Tensor, scale: torch.Tensor, low: torch.Tensor, group_size: int):
    """x @ W.T for an int4 weight's packed tensors: the kernel for a decode step's rows on a CUDA GPU, else the
    weight dequantized and multiplied in x's dtype."""
    if runs_kernel(x):
        return torch.ops.runner.int4_gemv(x, words, scale, low, group_size)
    return torch.nn.functional.linear(x, int4_weight(words, scale, low, group_size).to(x.dtype))


def int8_product(x: torch.Tensor, words: torch.Tensor, scale: torch.Tensor):
    """x @ W.T for an int8 weight's packed tensors (as int4_product)."""
    if runs_kernel(x):
        return torch.ops.runner.int8_gemv(x, words, scale)
    return torch.nn.functional.linear(x, int8_weight(words, scale).to(x.dtype))


class KernelWeight(DequantizingWeight):
    """A weight whose product is a function of its packed tensors and attributes (`product`, the kernel's caller),
    so a Linear can hold those as plain tensors and call it directly (runner/quant/kernel_linears.py)."""

    product = None  # a staticmethod in each subclass: product(x, *packed tensors, *attributes before shape_)

    def linear(self, x: torch.Tensor) -> torch.Tensor:
        tensors, attributes = self._parts()
        return self.product(x, *tensors, *attributes)


@registers_ops
class TritonInt4Tensor(KernelWeight):
    """`words` (out, in / 8) int32, `scale` and `low` (out, in / group_size) in the weight's dtype."""

    tensor_data_names = ["words", "scale", "low"]
    tensor_attribute_names = ["group_size", "shape_", "dtype"]
    product = staticmethod(int4_product)

    @classmethod
    def from_hp(cls, weight: torch.Tensor, group_size: int) -> TritonInt4Tensor:
        words, scale, low = pack_int4(weight, group_size)
        return cls(words, scale, low, group_size, weight.shape, weight.dtype)

    def dequantize(self, output_dtype: torch.dtype | None = None) -> torch.Tensor:
        return int4_weight(self.words, self.scale, self.low, self.group_size).to(output_dtype or self.dtype)

    def kernel_key(self) -> tuple[str, tuple]:
        """(kernel, autotuning key values) of this weight's product: triton_ops.chosen_configs reads them."""
        return "_int4_gemv", (self.shape[0], self.words.shape[1], self.group_size)


@registers_ops
class TritonInt8Tensor(KernelWeight):
    """`words` (out, in / 4) int32 and a `scale` per output row in the weight's dtype."""

    tensor_data_names = ["words", "scale"]
    tensor_attribute_names = ["shape_", "dtype"]
    product = staticmethod(int8_product)

    @classmethod
    def from_hp(cls, weight: torch.Tensor) -> TritonInt8Tensor:
        words, scale = pack_int8(weight)
        return cls(words, scale, weight.shape, weight.dtype)

    def dequantize(self, output_dtype: torch.dtype | None = None) -> torch.Tensor:
        return int8_weight(self.words, self.scale).to(output_dtype or self.dtype)

    def kernel_key(self) -> tuple[str, tuple]:
        return "_int8_gemv", (self.shape[0], self.words.shape[1])


@dataclass
class TritonWeightConfig(AOBaseConfig):
    """torchao config (TorchAoConfig(quant_type=TritonWeightConfig(...))): `bits` 4 (groups of `group_size` inputs)
    or 8 (a scale per output row)."""

    bits: int = 4
    group_size: int = 128

    def __post_init__(self):
        if self.bits not in (4, 8) or (self.bits == 4 and self.group_size not in INT4_GROUPS):
            raise ValueError(f"TritonWeightConfig takes bits 4 (group_size {INT4_GROUPS}) or 8, got {self}")


def fits(in_features: int, config: TritonWeightConfig) -> bool:
    """Whether a Linear's input size fits the layout: whole groups (int4) or chunks of 32 inputs (int8)."""
    return in_features % (config.group_size if config.bits == 4 else INT8_CHUNK) == 0


@register_quantize_module_handler(TritonWeightConfig)
def _triton_weight_transform(module: torch.nn.Module, config: TritonWeightConfig, *, parameter_name: str = "weight"):
    weight = getattr(module, parameter_name)
    if not fits(weight.shape[-1], config):  # as torchao's int4 configs, such a layer is left as it is
        return module
    w = weight.detach()
    packed = TritonInt4Tensor.from_hp(w, config.group_size) if config.bits == 4 else TritonInt8Tensor.from_hp(w)
    setattr(module, parameter_name, torch.nn.Parameter(packed, requires_grad=False))
    return module


torch.serialization.add_safe_globals([TritonInt4Tensor, TritonInt8Tensor])
