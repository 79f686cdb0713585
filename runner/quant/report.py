"""Proof that quantization happened: which Linear layers were replaced, by what, and what it saved."""

from __future__ import annotations

from collections import Counter

import torch
from transformers import PreTrainedModel

from runner.config.run import RunConfig
from runner.errors import OptimizationNotApplied
from runner.models.build import auto_class, torch_dtype
from runner.quant.compat import swapped_linear
from runner.quant.sizes import empty_model


def _layer_scheme(module: torch.nn.Module) -> str | None:
    """'int8', 'nf4' or 'fp4' for a bitsandbytes layer, None for anything else."""
    import bitsandbytes as bnb

    if isinstance(module, bnb.nn.Linear8bitLt):
        return "int8"
    if isinstance(module, bnb.nn.Linear4bit):
        return module.weight.quant_type
    return None


def quant_state_bytes(model: torch.nn.Module) -> int:
    """Bytes of bitsandbytes' quantization state, which `get_memory_footprint` misses (it is neither a parameter
    nor a buffer): 4-bit blocks' absmax, code and offset, with double quantization the nested state of the absmax
    itself; 8-bit rows' scales (Int8Params.SCB). Each tensor once, and none the parameters already count."""
    seen = {t.data_ptr() for t in [*model.parameters(), *model.buffers()]}
    total = 0
    for module in model.modules():
        weight = getattr(module, "weight", None)
        state = getattr(weight, "quant_state", None)
        nested = getattr(state, "state2", None)
        tensors = [getattr(weight, "SCB", None)]
        for part in (state, nested):
            tensors += [getattr(part, name, None) for name in ("absmax", "code", "offset")]
        for tensor in tensors:
            if isinstance(tensor, torch.Tensor) and tensor.data_ptr() not in seen:
                seen.add(tensor.data_ptr())
                total += tensor.nelement() * tensor.element_size()
    return total


def layer_census(model: PreTrainedModel, dtype: torch.dtype) -> dict:
    schemes: Counter[str] = Counter()
    kept: list[str] = []  # Linear layers left in full precision
    quantized_bytes = unquantized_bytes = 0
    double_quant = False
    compute_dtypes: set[str] = set()
    element = torch.empty(0, dtype=dtype).element_size()
    for name, module in model.named_modules():
        scheme = _layer_scheme(module)
        if scheme is None:
            if isinstance(module, torch.nn.Linear):
                kept.append(name)
            continue
        schemes[scheme] += 1
        quantized_bytes += module.weight.nelement() * module.weight.element_size()
        unquantized_bytes += module.in_features * module.out_features * element
        state = getattr(module.weight, "quant_state", None)
        double_quant |= bool(getattr(state, "nested", False))
        if getattr(module, "compute_dtype", None) is not None:
            compute_dtypes.add(str(module.compute_dtype).removeprefix("torch."))
    return {
        "quantized_linear_layers": sum(schemes.values()),
        "by_scheme": dict(schemes),
        "unquantized_linear_layers": len(kept),
        "unquantized_linear_names": kept[:20],
        "double_quant": double_quant,
        "compute_dtypes": sorted(compute_dtypes),
        "linear_weight_bytes": quantized_bytes,
        "linear_weight_bytes_unquantized": unquantized_bytes,
        "linear_weight_ratio": quantized_bytes / unquantized_bytes if unquantized_bytes else None,
    }


def quantization_report(model: PreTrainedModel, cfg: RunConfig) -> dict:
    """The `model.quantization` section; raises when quantization was asked for and nothing was quantized."""
    dtype = torch_dtype(cfg.model.dtype)
    census = layer_census(model, dtype)
    if not census["quantized_linear_layers"]:
        raise OptimizationNotApplied(
            f"quant={cfg.quant.name} asked for {cfg.quant.bits}-bit bitsandbytes layers, but the loaded "
            f"{type(model).__name__} has none ({census['unquantized_linear_layers']} nn.Linear layers left as "
            "they were). Check quant.llm_int8_skip_modules, and that the model's linear layers are nn.Linear"
        )
    unquantized = empty_model(model.config, auto_class(cfg.model.task), dtype).get_memory_footprint()
    state_bytes = quant_state_bytes(model)
    footprint = model.get_memory_footprint() + state_bytes
    applied = getattr(model.config, "quantization_config", None)
    if applied is not None and not isinstance(applied, dict):
        applied = applied.to_dict()
    return {
        "method": "bitsandbytes",
        "bits": cfg.quant.bits,
        **census,
        "footprint_bytes": footprint,  # parameters, buffers and the quantization state
        "quant_state_bytes": state_bytes,
        "unquantized_footprint_bytes": unquantized,
        "footprint_ratio": footprint / unquantized,
        "bitsandbytes_config": applied,  # what transformers actually loaded with
        "loaded_as_nn_linear": swapped_linear(cfg.model.model_type),  # see runner/quant/compat.py
    }
