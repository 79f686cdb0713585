"""Sizes of a model without loading it: the architecture built on the meta device (no memory, no weights).

Used for the unquantized footprint a quantized run is compared with, and for the budget check before a
multi-GPU load."""

from __future__ import annotations

import copy

import torch
from accelerate import init_empty_weights
from accelerate.utils import CustomDtype
from transformers import PretrainedConfig, PreTrainedModel

from runner.config.model import ModelConfig
from runner.config.quant import QuantConfig
from runner.models.build import architecture_config, auto_class, torch_dtype
from runner.quant.base import is_quantized, method_of


def empty_model(config: PretrainedConfig, auto_model_class, dtype: torch.dtype) -> PreTrainedModel:
    config = copy.deepcopy(config)
    if hasattr(config, "quantization_config"):  # the plain architecture, whatever it was loaded with
        del config.quantization_config
    with init_empty_weights(include_buffers=True):
        model = auto_model_class.from_config(config, dtype=dtype)
    model.tie_weights()  # tied embeddings count once, as they do when loaded
    return model


def empty_preset(model: ModelConfig) -> PreTrainedModel:
    return empty_model(architecture_config(model), auto_class(model.task), torch_dtype(model.dtype))


def _skipped(name: str, patterns: list[str]) -> bool:
    # transformers skips a module when a pattern matches its name as a suffix or from the start
    return any(name == p or name.endswith("." + p) or name.startswith(p + ".") for p in patterns)


def quantizable_linears(model: PreTrainedModel, quant: QuantConfig) -> list[str]:
    """Names of the nn.Linear modules the method would replace: all but the skipped ones (by default the
    output embeddings, which transformers keeps in full precision)."""
    patterns = method_of(quant).skipped_modules(quant)
    if patterns is None:
        output = model.get_output_embeddings()
        patterns = [n for n, m in model.named_modules() if output is not None and m is output]
    return [
        name
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and not _skipped(name, patterns)  # subclasses: see compat.py
    ]


def quantized_dtypes(model: PreTrainedModel, quant: QuantConfig) -> dict[str, torch.dtype | CustomDtype]:
    """accelerate's `special_dtypes`: the storage of each quantized weight (int8, or 4-bit packed)."""
    if not is_quantized(quant):
        return {}
    dtype = method_of(quant).weight_storage(quant)
    return {f"{name}.weight": dtype for name in quantizable_linears(model, quant)}
