"""Models whose Linear layers a quantizer would miss.

transformers 5 replaces only modules whose type is exactly nn.Linear; a model that subclasses it keeps those
layers in full precision and "quantizes" nothing (Falcon's FalconLinear computes `x @ W.T + b`, nn.Linear's
math). While such a model is built for quantization, the subclass is swapped for nn.Linear: same parameter
names, shapes and initialization, so checkpoints load unchanged and the census proves the replacement."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator

import torch

from runner.config.run import RunConfig
from runner.quant.base import is_quantized

# model_type -> (modeling module, attribute) of an nn.Linear subclass with nn.Linear's math
LINEAR_SUBCLASSES = {"falcon": ("transformers.models.falcon.modeling_falcon", "FalconLinear")}


def swapped_linear(model_type: str) -> str | None:
    entry = LINEAR_SUBCLASSES.get(model_type)
    return f"{entry[0]}.{entry[1]}" if entry else None


@contextlib.contextmanager
def plain_linears(cfg: RunConfig) -> Iterator[None]:
    entry = LINEAR_SUBCLASSES.get(cfg.model.model_type)
    if not is_quantized(cfg.quant) or entry is None:
        yield
        return
    module = importlib.import_module(entry[0])
    original = getattr(module, entry[1])
    setattr(module, entry[1], torch.nn.Linear)
    try:
        yield
    finally:
        setattr(module, entry[1], original)
