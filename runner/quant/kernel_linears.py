"""Before the decode step of quant=int4wo_triton / int8wo_triton is compiled: each nn.Linear over a runner Triton
weight (triton_weights.KernelWeight) becomes a KernelLinear, which holds the weight's packed tensors as plain
parameters of its own and calls the weight's product on them, so the compiled graph has no tensor subclass in it.

Why not torchao's unwrapping (methods/torchao.py, UnwrappedWeights), which the torchao methods use: it rebuilds each
weight inside the graph from an object per layer (the parametrization's `rebuild_stack`), and dynamo then checks on
every call of the compiled step, in Python and even with skip_guard_eval, that those per-layer objects hold the same
class (three identity guards a layer): 1.07 ms a step for 32 layers against 0.13 ms in bf16 on a 2-core CPU. The
int4 step's GPU work is about 2.4 ms on the H200 (docs/benchmarks.md §6l), so that host time decided its speed.
Reversed after the measured calls: the class, and the original weight Parameter, go back."""

from __future__ import annotations

import torch

from runner.quant.base import CompileReady
from runner.quant.triton_weights import KernelWeight


class KernelLinear(torch.nn.Linear):
    """An nn.Linear whose weight is gone and whose weight's packed tensors are its parameters (under the names the
    weight class gives them), with the weight's attributes and product kept on the module."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tensors = [getattr(self, name) for name in self.packed_names]
        y = self.product(x, *tensors, *self.packed_attributes)
        return y if self.bias is None else y + self.bias.to(y.dtype)


def _kernel_weight(module: torch.nn.Module) -> KernelWeight | None:
    """The module's KernelWeight where the module is a plain nn.Linear whose class's forward runs (no forward of its
    own, as accelerate's hooks install: the class swap would not reach it)."""
    weight = getattr(module, "weight", None)
    plain = type(module) is torch.nn.Linear and "forward" not in vars(module)
    return weight if plain and isinstance(weight, KernelWeight) else None


class KernelLinears(CompileReady):
    """Every plain nn.Linear of `model` over a KernelWeight, made a KernelLinear; `reverse` makes each an nn.Linear
    over its original weight Parameter again and records which config each kernel's autotuning chose per shape
    (triton_ops.chosen_configs): runs of the same code can differ by which one won."""

    KIND = "kernel_linears"

    def __init__(self, model: torch.nn.Module) -> None:
        # each module's own parameters as they were (the weight, the bias, in the state dict's order): reverse puts
        # them back as they are
        self.saved = {m: dict(m._parameters) for m in model.modules() if _kernel_weight(m) is not None}
        for module in self.saved:
            weight = module.weight
            tensors, attributes = weight._parts()
            del module.weight
            for name, tensor in zip(weight.tensor_data_names, tensors, strict=True):
                module.register_parameter(name, torch.nn.Parameter(tensor, requires_grad=False))
            module.packed_names = tuple(weight.tensor_data_names)
            module.packed_attributes = tuple(attributes)
            module.product = weight.product
            module.__class__ = KernelLinear
        self.record = {"kind": self.KIND, "layers": len(self.saved)}

    def reverse(self, model: torch.nn.Module) -> dict:
        from runner.quant.triton_ops import chosen_configs

        keys = {saved["weight"].kernel_key() for saved in self.saved.values()}  # this model's shapes only
        for module, saved in self.saved.items():
            for name in ("packed_names", "packed_attributes", "product"):
                delattr(module, name)
            module.__class__ = torch.nn.Linear
            module._parameters.clear()
            module._parameters.update(saved)
        self.saved = {}
        return {**self.record, "reversed": True, "kernel_configs": chosen_configs(keys)}
