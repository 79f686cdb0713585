"""The runner's int4 and int8 weights for its own Triton kernels (quant=int4wo_triton, int8wo_triton), as torchao
tensor subclasses applied by torchao's `quantize_` through transformers' TorchAoConfig.

A weight holds its levels in int32 words (runner/quant/word_packing.py): int4 with a scale and a minimum per group
of `group_size` inputs, int8 with a scale per output row. A Linear over it calls the runner's matrix-vector kernel
(runner/quant/triton_gemv.py, the custom ops `runner::int4_gemv` and `runner::int8_gemv`, so a compiled decode step
keeps each as one call) when its input is on a CUDA GPU and has at most KERNEL_ROWS rows: a decode step. Anywhere
else (a prefill, the CPU) it dequantizes the weight in PyTorch ops and multiplies in the input's dtype, so the
method runs on every device and its layers are tested on the CPU."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import torch
from torchao.core.config import AOBaseConfig
from torchao.quantization.transform_module import register_quantize_module_handler
from torchao.utils import TorchAOBaseTensor

from runner.quant.word_packing import INT8_CHUNK, int4_weight, int8_weight, pack_int4, pack_int8

aten = torch.ops.aten
# rows of input up to which a Linear runs the matrix-vector kernel: each row's products read the whole weight again
# (one program column per row), so a few rows only; more (a prefill, a large batch) dequantize and multiply. 4 is
# not measured: `h200_page.sh batch_triton` (4 and 16 rows) is the study that will say where the kernel stops paying
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
    return x.new_empty(*x.shape[:-1], words.shape[0])


@torch.library.custom_op("runner::int8_gemv", mutates_args=())
def int8_gemv(x: torch.Tensor, words: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    from runner.quant import triton_gemv

    return triton_gemv.int8_gemv(x, words, scale)


@int8_gemv.register_fake
def _(x, words, scale):
    return x.new_empty(*x.shape[:-1], words.shape[0])


def runs_kernel(x: torch.Tensor) -> bool:
    """Whether a Linear over a runner Triton weight runs the kernel for input `x` (else it dequantizes)."""
    return x.is_cuda and x.numel() // x.shape[-1] <= KERNEL_ROWS and HAS_TRITON


class _WordWeight(TorchAOBaseTensor):
    """A (out, in) weight of `dtype` whose levels are packed in int32 words; subclasses name the tensors."""

    def __new__(cls, *tensors_and_attributes):
        *_, shape_, dtype = tensors_and_attributes
        kwargs = {"device": tensors_and_attributes[0].device, "dtype": dtype, "requires_grad": False}
        return torch.Tensor._make_wrapper_subclass(cls, shape_, **kwargs)

    def linear(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class TritonInt4Tensor(_WordWeight):
    """`words` (out, in / 8) int32, `scale` and `low` (out, in / group_size) in the weight's dtype."""

    tensor_data_names = ["words", "scale", "low"]
    tensor_attribute_names = ["group_size", "shape_", "dtype"]

    def __init__(self, words, scale, low, group_size, shape_, dtype):
        super().__init__()
        self.words, self.scale, self.low = words, scale, low
        self.group_size, self.shape_ = group_size, shape_

    @classmethod
    def from_hp(cls, weight: torch.Tensor, group_size: int) -> TritonInt4Tensor:
        words, scale, low = pack_int4(weight, group_size)
        return cls(words, scale, low, group_size, weight.shape, weight.dtype)

    def dequantize(self, output_dtype: torch.dtype | None = None) -> torch.Tensor:
        return int4_weight(self.words, self.scale, self.low, self.group_size).to(output_dtype or self.dtype)

    def linear(self, x: torch.Tensor) -> torch.Tensor:
        if runs_kernel(x):
            return torch.ops.runner.int4_gemv(x, self.words, self.scale, self.low, self.group_size)
        return torch.nn.functional.linear(x, self.dequantize(x.dtype))


class TritonInt8Tensor(_WordWeight):
    """`words` (out, in / 4) int32 and a `scale` per output row in the weight's dtype."""

    tensor_data_names = ["words", "scale"]
    tensor_attribute_names = ["shape_", "dtype"]

    def __init__(self, words, scale, shape_, dtype):
        super().__init__()
        self.words, self.scale, self.shape_ = words, scale, shape_

    @classmethod
    def from_hp(cls, weight: torch.Tensor) -> TritonInt8Tensor:
        words, scale = pack_int8(weight)
        return cls(words, scale, weight.shape, weight.dtype)

    def dequantize(self, output_dtype: torch.dtype | None = None) -> torch.Tensor:
        return int8_weight(self.words, self.scale).to(output_dtype or self.dtype)

    def linear(self, x: torch.Tensor) -> torch.Tensor:
        if runs_kernel(x):
            return torch.ops.runner.int8_gemv(x, self.words, self.scale)
        return torch.nn.functional.linear(x, self.dequantize(x.dtype))


for _cls in (TritonInt4Tensor, TritonInt8Tensor):

    @_cls.implements(aten.linear.default)
    @_cls.implements_torch_function(torch.nn.functional.linear)
    def _(func, types, args, kwargs):
        x, weight = args[0], args[1]
        bias = args[2] if len(args) > 2 else None
        y = weight.linear(x)
        return y if bias is None else y + bias


@dataclass
class TritonWeightConfig(AOBaseConfig):
    """torchao config (TorchAoConfig(quant_type=TritonWeightConfig(...))): `bits` 4 (groups of `group_size` inputs)
    or 8 (a scale per output row)."""

    bits: int = 4
    group_size: int = 128


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
