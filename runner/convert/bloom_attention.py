"""Bloom's ALiBi attention through PyTorch's SDPA, reversibly.

Transformers 5 has no SDPA path for Bloom: `BloomAttention` adds the ALiBi bias to the scores in eager code
(`alibi.baddbmm(query, key)`, then the mask, then a float32 softmax). SDPA takes the same sum as a float
`attn_mask`: ALiBi per head plus the causal and padding mask as the dtype's minimum (Bloom's own masked value, so
a padding query's row stays finite as in eager). On CUDA the memory-efficient and cuDNN kernels take such a
mask; PyTorch's flash kernel and FlashAttention take none. The bias is built once per forward pass and shared by
every layer (the same ALiBi tensor reaches them all).

The model is loaded with eager attention (the only one Transformers accepts for Bloom); the conversion gives every
BloomAttention a forward that calls SDPA and sets `attn_implementation="sdpa"` on the config, so the causal mask is
Transformers' SDPA mask (None without padding, booleans with it). The weights are untouched: reversing removes the
instance attributes and puts the implementation back, so the state dict and the forward are the original ones.

Applied by the convert stage when a Bloom model runs with attention=sdpa (or a forced SDPA kernel)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.weak import WeakTensorKeyDictionary
from transformers.models.bloom import modeling_bloom

from runner.attention.implementations import EAGER, SDPA
from runner.convert.fused_attention import KIND, FusedAttention
from runner.errors import OptimizationNotApplied

log = logging.getLogger(__name__)

MODEL_TYPE = "bloom"
ADDED = ("forward", "fused_bias")  # instance attributes the conversion sets; reversing deletes exactly these
ALWAYS_MASKED = (
    "adds an ALiBi bias to the attention scores, which its converted attention passes to SDPA as a float mask"
)
NO_BIAS_ARGUMENT = (
    "Bloom adds an ALiBi bias (one slope per head) to the attention scores, which the runner hands to PyTorch's "
    "SDPA as a float mask; FlashAttention and FlexAttention have no Bloom path in Transformers and take no such mask"
)


def provides(config, implementation: str, cls: type | None) -> bool:
    """The conversion runs `implementation` on this Bloom: SDPA, while Transformers' Bloom class has none."""
    return implementation == SDPA and not getattr(cls, "_supports_sdpa", False)


def load_as(config, implementation: str, cls: type | None) -> str:
    """The attn_implementation to load with: eager, when the conversion supplies SDPA afterwards."""
    return EAGER if provides(config, implementation, cls) else implementation


def refusal(config, implementation: str) -> str | None:
    """Why no conversion can run `implementation` on Bloom, or None."""
    if implementation not in (EAGER, SDPA):
        return NO_BIAS_ARGUMENT
    return None


def why_not(model: nn.Module, implementation: str | None = None) -> str | None:
    """Why this loaded model is not converted for `implementation` (the run's attention), or None."""
    config = getattr(model, "config", None)
    if getattr(config, "model_type", None) != MODEL_TYPE:
        return "not a Bloom model"
    implementation = implementation or config._attn_implementation
    if implementation != SDPA:
        return f"attention {implementation!r}: the conversion gives Bloom SDPA only (eager is the reference)"
    if config._attn_implementation != EAGER:
        return f"Transformers runs this Bloom with {config._attn_implementation!r} itself"
    return None


@dataclass
class _Bias:
    """The float mask of the forward pass under way, keyed by its ALiBi tensor (one per forward pass, shared by
    every layer); the entry goes when Transformers drops that tensor."""

    config: Any
    built: WeakTensorKeyDictionary = field(default_factory=WeakTensorKeyDictionary)

    def get(self, alibi, mask, batch: int, heads: int, queries: int, keys: int) -> torch.Tensor:
        cached = self.built.get(alibi)
        if cached is not None and cached[0] is mask:
            return cached[1]
        bias = float_mask(alibi, mask, batch, heads, queries, keys)
        self.built[alibi] = (mask, bias)
        return bias


def float_mask(alibi, mask, batch: int, heads: int, queries: int, keys: int) -> torch.Tensor:
    """ALiBi [batch * heads, 1, keys] and Transformers' mask -> SDPA's additive mask [batch, heads, queries, keys].
    `mask` is None (causal, no padding), booleans (True: attend) or eager's additive floats."""
    bias = alibi.view(batch, heads, 1, keys)
    masked = torch.finfo(bias.dtype).min
    if mask is None:
        if queries == 1:
            return bias  # one new token sees every cached one
        causal = torch.ones(queries, keys, dtype=torch.bool, device=bias.device).tril(keys - queries)
        return bias.masked_fill(~causal, masked)
    if mask.dtype == torch.bool:
        return bias.masked_fill(~mask, masked)
    return bias + mask  # eager's mask: 0 where attended, the dtype's minimum elsewhere


def fused_forward(
    self,
    hidden_states: torch.Tensor,
    residual: torch.Tensor,
    alibi: torch.Tensor,
    attention_mask: torch.Tensor | None,
    layer_past=None,
    use_cache: bool = False,
    output_attentions: bool = False,
    **kwargs,
):
    """BloomAttention.forward with SDPA and the ALiBi bias as its float mask (installed per instance)."""
    shared: _Bias = self.fused_bias
    exact_tp = self.pretraining_tp > 1 and self.slow_but_exact
    if shared.config._attn_implementation == EAGER or output_attentions or exact_tp:
        # the reference path, unchanged: eager set after converting, attention weights asked for, or Bloom's
        # slice-by-slice output projection
        return type(self).forward(
            self, hidden_states, residual, alibi, attention_mask, layer_past, use_cache, output_attentions, **kwargs
        )
    batch, queries, _ = hidden_states.shape
    query, key, value = self._reshape(self.query_key_value(hidden_states))
    if layer_past is not None:
        key, value = layer_past.update(key, value, self.layer_idx)
    bias = shared.get(alibi, attention_mask, batch, self.num_heads, queries, key.shape[2])
    output = F.scaled_dot_product_attention(
        query,
        key,
        value,
        attn_mask=bias,
        dropout_p=self.attention_dropout.p if self.training else 0.0,
        scale=self.inv_norm_factor,
    )
    output = self.dense(output.transpose(1, 2).reshape(batch, queries, self.num_heads * self.head_dim))
    return modeling_bloom.dropout_add(output, residual, self.hidden_dropout, self.training), None


def attention_modules(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, modeling_bloom.BloomAttention)]


def convert(model: nn.Module, implementation: str = SDPA) -> FusedAttention:
    """Give every BloomAttention of `model` SDPA with ALiBi as its float mask (see why_not first)."""
    from runner.convert.bettertransformer import fingerprint

    before = fingerprint(model)
    config = model.config
    modules = attention_modules(model)
    if not modules:
        raise OptimizationNotApplied(f"{KIND}: {type(model).__name__} has no BloomAttention module")
    loaded = config._attn_implementation
    shared = _Bias(config)
    for module in modules:
        module.forward = fused_forward.__get__(module)
        module.fused_bias = shared
    config._attn_implementation = implementation  # Transformers' SDPA mask: None without padding, else booleans

    def undo() -> bool:
        config._attn_implementation = loaded
        for module in modules:
            for name in ADDED:
                vars(module).pop(name, None)
        return config._attn_implementation == loaded and all(
            not set(ADDED) & vars(m).keys() for m in attention_modules(model)
        )

    record = {
        "kind": KIND,
        "what": "BloomAttention -> torch SDPA with the ALiBi bias (+ causal and padding mask) as a float attn_mask, "
        "built once per forward pass",
        "layers": len(modules),
        "implementation": implementation,
        "loaded_with": loaded,
        "query_heads": config.n_head,
        "key_value_heads": config.n_head,
    }
    log.info(
        "%s: %d BloomAttention layers now call SDPA with ALiBi as a float mask (loaded with %r)",
        KIND,
        len(modules),
        loaded,
    )
    return FusedAttention(record, undo, before, "Bloom")
