"""Proof that quantization happened: which Linear layers were replaced, by what, and what it saved.

The census is the same for every method; the method says what a quantized layer is (`layer_scheme`) and how
many bytes its weight really takes (`weight_bytes`: a torchao tensor subclass reports its logical dtype)."""

from __future__ import annotations

from collections import Counter

import torch
from transformers import PreTrainedModel

from runner.config.run import RunConfig
from runner.errors import OptimizationNotApplied
from runner.models.build import auto_class, torch_dtype
from runner.quant.base import QuantMethod, method_of
from runner.quant.compat import swapped_linear
from runner.quant.sizes import empty_model


def layer_census(model: PreTrainedModel, dtype: torch.dtype, method: QuantMethod) -> dict:
    schemes: Counter[str] = Counter()
    kept: list[str] = []  # Linear layers left in full precision
    quantized_bytes = unquantized_bytes = 0
    double_quant = False
    compute_dtypes: set[str] = set()
    element = torch.empty(0, dtype=dtype).element_size()
    for name, module in model.named_modules():
        scheme = method.layer_scheme(module)
        if scheme is None:
            if isinstance(module, torch.nn.Linear):
                kept.append(name)
            continue
        schemes[scheme] += 1
        quantized_bytes += method.weight_bytes(module)
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
    method = method_of(cfg.quant)
    dtype = torch_dtype(cfg.model.dtype)
    census = layer_census(model, dtype, method)
    if not census["quantized_linear_layers"]:
        raise OptimizationNotApplied(
            f"quant={cfg.quant.name} asked for {method.describe(cfg.quant)} layers, but the loaded "
            f"{type(model).__name__} has none ({census['unquantized_linear_layers']} nn.Linear layers left as "
            f"they were). {method.nothing_quantized_hint}"
        )
    unquantized = empty_model(model.config, auto_class(cfg.model.task), dtype).get_memory_footprint()
    state_bytes = method.state_bytes(model)
    footprint = method.footprint(model)
    applied = getattr(model.config, "quantization_config", None)
    if applied is not None and not isinstance(applied, dict):
        applied = applied.to_dict()
    return {
        "method": method.name,
        "bits": cfg.quant.bits,
        **method.options_record(cfg.quant),
        **census,
        "footprint_bytes": footprint,  # parameters, buffers and the quantization state
        "quant_state_bytes": state_bytes,
        "unquantized_footprint_bytes": unquantized,
        "footprint_ratio": footprint / unquantized,
        f"{method.name}_config": applied,  # what transformers actually loaded with
        "loaded_as_nn_linear": swapped_linear(cfg.model.model_type),  # see runner/quant/compat.py
    }
