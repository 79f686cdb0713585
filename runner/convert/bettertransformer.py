"""BetterTransformer as a reversible conversion (Optimum's `to_bettertransformer()` is gone from Transformers 5):

- BERT-family encoders (BERT, RoBERTa, DistilBERT, MiniLM) run PyTorch's fused encoder fast path, with
  nested tensors so padding tokens are skipped (runner/convert/fused_encoder.py);
- decoders get what BetterTransformer gave them, PyTorch's native SDPA, which Transformers now has built in
  (`attn_implementation="sdpa"`).

Reversing puts the original modules (or attention implementation) back: the state dict is the same object
for object, so `save_pretrained` writes a canonical Transformers checkpoint."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import transformers
from torch import nn

from runner.attention.implementations import EAGER, SDPA
from runner.attention.support import model_class, supports
from runner.config.model import Task
from runner.config.run import RunConfig
from runner.convert import fused_encoder
from runner.errors import ConfigError, OptimizationNotApplied

log = logging.getLogger(__name__)

FUSED_ENCODER, NATIVE_SDPA = "fused_encoder", "native_sdpa"
OPTION = "convert.bettertransformer=true"


def _plan(cfg: RunConfig) -> str:
    model, attention = cfg.model, cfg.attention
    if not cfg.backend.runs_torch_modules:
        raise ConfigError(f"{OPTION} converts PyTorch modules, and backend={cfg.backend.name} runs its own graph")
    layout = fused_encoder.LAYOUTS.get(model.model_type)
    if layout is not None and model.task != Task.causal_lm:
        problems = []
        activation = model.architecture.get(layout.activation, "gelu")
        if activation not in fused_encoder.FAST_PATH_ACTIVATIONS:
            problems.append(f"the fused encoder kernel has no {activation!r} activation (model.architecture)")
        if cfg.quant.name != "none":
            problems.append(f"the fused encoder needs plain weights, and quant={cfg.quant.name} replaces them")
        if attention.implementation not in (EAGER, SDPA):
            problems.append(f"the fused encoder replaces attention, so attention={attention.name} would do nothing")
        if problems:
            raise ConfigError(f"{OPTION} on model={model.name}: " + "; ".join(problems) + ". Drop one of the two")
        return FUSED_ENCODER
    if model.task == Task.causal_lm:
        if attention.implementation not in (EAGER, SDPA):
            raise ConfigError(
                f"{OPTION} on a decoder means PyTorch's native SDPA, and attention={attention.name} already "
                "replaces attention: drop one of the two"
            )
        cls = model_class(model)
        if cls is not None and not supports(cls, SDPA):
            raise ConfigError(
                f"{OPTION} on a decoder means PyTorch's native SDPA, which {cls.__name__} (model={model.name}) "
                f"does not have in transformers {transformers.__version__}: drop {OPTION}"
            )
        if cls is not None and attention.implementation == EAGER and not cls._can_set_attn_implementation():
            raise ConfigError(
                f"{OPTION} on model={model.name} would switch {cls.__name__} to SDPA after loading, which it cannot "
                "do; load it with SDPA instead: attention=sdpa (the same attention, without the conversion)"
            )
        return NATIVE_SDPA
    families = ", ".join(fused_encoder.LAYOUTS)
    raise ConfigError(
        f"{OPTION} covers BERT-family encoders ({families}) and decoders; model={model.name} is a "
        f"{model.model_type} {model.task.value} model: drop {OPTION}"
    )


def plan(cfg: RunConfig, strict: bool = False) -> str | None:
    """What the conversion will do for this config; None (or ConfigError when strict) if it cannot apply."""
    try:
        return _plan(cfg)
    except ConfigError:
        if strict:
            raise
        return None


def fingerprint(model: nn.Module) -> dict[str, object]:
    """Which module object sits at every name, and the state dict's keys: equal fingerprints mean the original
    modules, with their own parameters, are back. Not tensor storage: bitsandbytes re-lays 4-bit weights during
    inference on the CPU and builds fresh quantization-state tensors on every `state_dict()` call."""
    prints: dict[str, object] = {name: id(module) for name, module in model.named_modules(remove_duplicate=False)}
    prints["<state dict keys>"] = tuple(sorted(model.state_dict().keys()))
    return prints


QUANTIZED_PARAMETERS = ("Params4bit", "Int8Params")  # bitsandbytes re-lays these out during CPU inference


def _tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    named = [*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)]
    return {name: tensor for name, tensor in named if type(tensor).__name__ not in QUANTIZED_PARAMETERS}


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of every parameter and buffer value (bitsandbytes' packed weights aside, whose modules the
    fingerprint follows): the reversal must give back these exact values. Host memory: one copy of the weights."""
    return {name: tensor.detach().to("cpu", copy=True) for name, tensor in _tensors(model).items()}


def changed_values(model: nn.Module, before: dict[str, torch.Tensor]) -> list[str]:
    """Names whose tensor is gone or no longer bit-for-bit equal (torch.equal) to the snapshot's."""
    now = _tensors(model)
    return [name for name, value in before.items() if name not in now or not torch.equal(now[name].cpu(), value)]


@dataclass
class Conversion:
    kind: str
    record: dict[str, Any]
    undo: Callable[[], None]
    before: dict[str, object]
    values: dict[str, torch.Tensor]

    def note_padding_skipped(self, skipped: bool) -> None:
        """What the verify stage's probe saw (nested tensors ran); the convert stage records it with the rest."""
        self.record["padding_skipped"] = skipped

    def reverse(self, model: nn.Module) -> dict[str, Any]:
        self.undo()
        if fingerprint(model) != self.before:
            raise OptimizationNotApplied(
                f"{OPTION}: reversing did not restore the original modules and state dict keys; the model must not "
                "be saved"
            )
        changed = changed_values(model, self.values)
        if changed:
            raise OptimizationNotApplied(
                f"{OPTION}: reversing changed {len(changed)} tensor value(s) ({', '.join(changed[:3])}); the model "
                "must not be saved"
            )
        self.record["reversed"] = {"state_dict_restored": True, "values_compared": len(self.values)}
        self.values = {}  # the host copy is no longer needed
        return self.record


def _fused(model: nn.Module, cfg: RunConfig) -> tuple[dict, Callable[[], None]]:
    model_type = cfg.model.model_type
    why = fused_encoder.convertible(model, model_type)
    if why:
        raise ConfigError(f"{OPTION} cannot convert {type(model).__name__} (model={cfg.model.name}): {why}")
    original, fused = fused_encoder.build(model, model_type)
    fused_encoder.install(model, model_type, fused)
    record = {
        "kind": FUSED_ENCODER,
        "what": "encoder layers -> torch.nn.TransformerEncoder fast path (fused kernel; nested tensors skip padding)",
        "layers": len(fused.encoder.layers),
        "skips_padding": fused.skips_padding,
    }
    log.info("%s: %d %s layers now run PyTorch's fused encoder", OPTION, record["layers"], type(model).__name__)
    return record, lambda: fused_encoder.install(model, model_type, original)


def _native_sdpa(model: nn.Module) -> tuple[dict, Callable[[], None]]:
    before = model.config._attn_implementation
    if before != SDPA:
        model.set_attn_implementation(SDPA)
    after = model.config._attn_implementation
    if after != SDPA:
        raise OptimizationNotApplied(f"{OPTION}: {type(model).__name__} kept attn_implementation={after!r}")
    what = "decoder: BetterTransformer's decoder path is PyTorch's native SDPA, built into Transformers"
    log.info(
        "%s: %s is a decoder; BetterTransformer's decoder path is PyTorch's native SDPA, which Transformers has "
        "built in (attn_implementation=%r -> 'sdpa'%s)",
        OPTION,
        type(model).__name__,
        before,
        "" if before != SDPA else ", already in use: nothing to change",
    )
    record = {"kind": NATIVE_SDPA, "what": what, "attn_implementation": {"before": before, "after": after}}
    return record, (lambda: model.set_attn_implementation(before)) if before != SDPA else (lambda: None)


def convert(model: nn.Module, cfg: RunConfig) -> Conversion:
    kind = plan(cfg, strict=True)
    before, values = fingerprint(model), snapshot(model)
    record, undo = _fused(model, cfg) if kind == FUSED_ENCODER else _native_sdpa(model)
    return Conversion(kind, record, undo, before, values)
