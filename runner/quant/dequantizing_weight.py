"""The runner's own torchao weight subclasses (packed_int4.py, triton_weights.py): their common base, and the ops
registered on each: F.linear, taking the bias positionally or by keyword and keeping the output in the input's
dtype, and the row-wise concatenation and slicing that `convert.fuse_projections` joins q/k/v and gate/up with."""

from __future__ import annotations

import torch
from torchao.utils import TorchAOBaseTensor

aten = torch.ops.aten


class DequantizingWeight(TorchAOBaseTensor):
    """A (out, in) weight of `dtype` held in packed tensors. A subclass names them (`tensor_data_names`) and its
    attributes (`tensor_attribute_names`, ending with `shape_` and `dtype`; the constructor takes them in that order),
    and defines `dequantize`; its product
    with an input, `linear`, dequantizes and multiplies in the input's dtype unless the subclass has a kernel.

    Every packed tensor holds one row (or one slice of rows, the same for each) per output row, in dimension 0, so
    weights of one class and attributes concatenate along their output rows, and a range of output rows is a view
    (`joins_rows`: what convert.fuse_projections asks of a quantized weight)."""

    joins_rows = True

    def __new__(cls, *tensors_and_attributes):
        *_, shape_, dtype = tensors_and_attributes
        kwargs = {"device": tensors_and_attributes[0].device, "dtype": dtype, "requires_grad": False}
        return torch.Tensor._make_wrapper_subclass(cls, shape_, **kwargs)

    def __init__(self, *tensors_and_attributes):
        """Each packed tensor and attribute under its name, in the order of tensor_data_names and
        tensor_attribute_names (as torchao's flattening rebuilds it); `dtype` is the wrapper's own."""
        super().__init__()
        names = [*self.tensor_data_names, *self.tensor_attribute_names]
        for name, value in zip(names, tensors_and_attributes, strict=True):
            if name != "dtype":
                setattr(self, name, value)

    def linear(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear(x, self.dequantize(x.dtype))

    def _parts(self) -> tuple[list[torch.Tensor], list]:
        """(packed tensors, attributes before shape_ and dtype)."""
        tensors = [getattr(self, name) for name in self.tensor_data_names]
        return tensors, [getattr(self, name) for name in self.tensor_attribute_names[:-2]]

    def _with(self, tensors: list[torch.Tensor], rows: int) -> DequantizingWeight:
        _, attributes = self._parts()
        return type(self)(*tensors, *attributes, torch.Size((rows, self.shape[1])), self.dtype)


def _join_rows(weights: list[torch.Tensor]) -> DequantizingWeight:
    first = next(w for w in weights if isinstance(w, DequantizingWeight))
    _, attributes = first._parts()
    for weight in weights:
        if type(weight) is not type(first):
            raise ValueError(
                f"cannot concatenate a {type(weight).__name__} with a {type(first).__name__} by rows: one class"
            )
        if weight._parts()[1] != attributes or weight.dtype != first.dtype:
            raise ValueError(
                f"cannot concatenate {type(weight).__name__}{weight._parts()[1]} ({weight.dtype}) onto "
                f"{type(first).__name__}{attributes} ({first.dtype}): one class, attributes and dtype"
            )
        if weight.shape[1] != first.shape[1]:
            raise ValueError(f"cannot concatenate weights of {weight.shape[1]} and {first.shape[1]} inputs by rows")
    tensors = [torch.cat(parts) for parts in zip(*(w._parts()[0] for w in weights), strict=True)]
    return first._with(tensors, sum(w.shape[0] for w in weights))


def registers_ops(cls):
    """Class decorator: `F.linear(x, weight, bias)` and aten.linear on an instance call `weight.linear(x)` (the
    subclass's product without bias) and add the bias in the output's dtype; torch.cat along dimension 0 and
    slicing of dimension 0 (step 1) work on the packed tensors. torchao keeps its op tables per class, so each
    concrete class registers."""

    @cls.implements(aten.linear.default)
    @cls.implements_torch_function(torch.nn.functional.linear)
    def _(func, types, args, kwargs):
        x, weight, *rest = args
        bias = rest[0] if rest else (kwargs or {}).get("bias")
        y = weight.linear(x)
        return y if bias is None else y + bias.to(y.dtype)

    @cls.implements(aten.cat.default)
    def _(func, types, args, kwargs):
        tensors, dim = args[0], (args[1] if len(args) > 1 else (kwargs or {}).get("dim", 0))
        if dim not in (0, -2):
            raise NotImplementedError(f"{cls.__name__} concatenates along its output rows (dim 0), not dim {dim}")
        return _join_rows(list(tensors))

    @cls.implements(aten.slice.Tensor)
    def _(func, types, args, kwargs):
        weight, dim, start, end, step = (list(args) + [0, None, None, 1][len(args) - 1 :])[:5]
        if dim not in (0, -2) or step != 1:
            raise NotImplementedError(f"{cls.__name__} slices output rows (dim 0, step 1), not dim {dim}, step {step}")
        start, end, _ = slice(start, end).indices(weight.shape[0])
        tensors, _ = weight._parts()
        return weight._with([t[start:end] for t in tensors], max(end - start, 0))

    return cls
