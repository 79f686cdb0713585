"""The runner's own torchao weight subclasses (packed_int4.py, triton_weights.py): their common base, and F.linear
over them, registered once, taking the bias positionally or by keyword and keeping the output in the input's dtype."""

from __future__ import annotations

import torch
from torchao.utils import TorchAOBaseTensor


class DequantizingWeight(TorchAOBaseTensor):
    """A (out, in) weight of `dtype` held in packed tensors. A subclass names them (`tensor_data_names`) and its
    attributes (`tensor_attribute_names`, ending with `shape_` and `dtype`), and defines `dequantize`; its product
    with an input, `linear`, dequantizes and multiplies in the input's dtype unless the subclass has a kernel."""

    def __new__(cls, *tensors_and_attributes):
        *_, shape_, dtype = tensors_and_attributes
        kwargs = {"device": tensors_and_attributes[0].device, "dtype": dtype, "requires_grad": False}
        return torch.Tensor._make_wrapper_subclass(cls, shape_, **kwargs)

    def linear(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear(x, self.dequantize(x.dtype))


def registers_linear(cls):
    """Class decorator: `F.linear(x, weight, bias)` and aten.linear on an instance call `weight.linear(x)` (the
    subclass's product without bias) and add the bias in the output's dtype. torchao keeps its op tables per class,
    so each concrete class registers."""

    @cls.implements(torch.ops.aten.linear.default)
    @cls.implements_torch_function(torch.nn.functional.linear)
    def _(func, types, args, kwargs):
        x, weight, *rest = args
        bias = rest[0] if rest else (kwargs or {}).get("bias")
        y = weight.linear(x)
        return y if bias is None else y + bias.to(y.dtype)

    return cls
