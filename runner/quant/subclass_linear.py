"""F.linear over the runner's own torchao weight subclasses (packed_int4.py, triton_weights.py): one registration
that takes the bias positionally or by keyword and keeps the output in the input's dtype."""

from __future__ import annotations

import torch


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
