"""The work a model must do: matmul FLOPs of a forward pass, and bytes moved per decoded token."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Shape:
    """What the cost model needs to know of a Transformer."""

    linear_macs_per_token: int  # multiply-accumulates of every Linear layer (projections, MLP, lm head)
    layers: int
    hidden: int  # query width: heads * head_dim
    kv_width: int  # key/value width per layer: kv_heads * head_dim
    causal: bool

    @classmethod
    def of(cls, model: torch.nn.Module, causal: bool) -> Shape:
        config = model.config
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        hidden = _first(text, "hidden_size", "dim", "d_model", "n_embd")
        heads = _first(text, "num_attention_heads", "n_head", "n_heads")
        head_dim = getattr(text, "head_dim", None) or hidden // heads
        kv_heads = _kv_heads(text, heads)
        macs = sum(m.in_features * m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear))
        layers = _first(text, "num_hidden_layers", "n_layer", "n_layers", "num_layers")
        return cls(macs, layers, heads * head_dim, kv_heads * head_dim, causal)


def _first(config, *names):
    for name in names:
        value = getattr(config, name, None)
        if value:
            return value
    raise AttributeError(f"{type(config).__name__} has none of {names}")


def _kv_heads(config, heads: int) -> int:
    if getattr(config, "multi_query", False) and not getattr(config, "new_decoder_architecture", False):
        return 1  # falcon-7b: one shared key/value head
    for name in ("num_key_value_heads", "num_kv_heads"):
        if getattr(config, name, None):
            return getattr(config, name)
    return heads


def forward_flops(shape: Shape, batch: int, seq: int) -> float:
    """2 FLOPs per multiply-accumulate: Linear layers on every token, plus attention scores and values
    (QK^T and AV, 2*seq*seq*hidden MACs per layer); a causal mask halves the useful attention work."""
    linear = 2 * shape.linear_macs_per_token * batch * seq
    attention = 2 * 2 * shape.layers * batch * seq * seq * shape.hidden
    return linear + (attention / 2 if shape.causal else attention)


def decode_bytes_per_step(weight_bytes: int, shape: Shape, batch: int, context: float, dtype_bytes: int) -> float:
    """Bytes one decode step must read at the least: every weight once, and the KV cache of `context`
    tokens (keys and values of every layer) for each row."""
    kv_cache = 2 * shape.layers * shape.kv_width * context * dtype_bytes * batch
    return weight_bytes + kv_cache


def decode_flops(shape: Shape, batch: int, context: float) -> float:
    """FLOPs of one decode step: every Linear layer on one token per row, and attention over `context` tokens."""
    return 2 * shape.linear_macs_per_token * batch + 2 * 2 * shape.layers * batch * context * shape.hidden
