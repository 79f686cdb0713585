"""PyTorch's fused encoder fast path for BERT-family encoders: each Transformers layer becomes a
`torch.nn.TransformerEncoderLayer` sharing its weights (the query, key and value projections concatenated into
one input projection), and the stack runs as a `torch.nn.TransformerEncoder`, which in inference mode calls
the fused `_transformer_encoder_layer_fwd` kernel and packs padded batches into nested tensors, so padding
tokens are never computed. This is what BetterTransformer's `to_bettertransformer()` did for these models."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import nn
from transformers import modeling_outputs


@dataclass(frozen=True)
class LayerLayout:
    """Where one architecture keeps the weights of a post-norm encoder layer (dotted attribute paths)."""

    stack: str  # the encoder module on the base model
    query: str
    key: str
    value: str
    out: str
    norm1: str
    linear1: str
    linear2: str
    norm2: str
    heads: str  # config attribute names
    activation: str
    output: str  # the ModelOutput class the stack returns (its fields differ across Transformers versions)


BERT = LayerLayout(
    stack="encoder",
    query="attention.self.query",
    key="attention.self.key",
    value="attention.self.value",
    out="attention.output.dense",
    norm1="attention.output.LayerNorm",
    linear1="intermediate.dense",
    linear2="output.dense",
    norm2="output.LayerNorm",
    heads="num_attention_heads",
    activation="hidden_act",
    output="BaseModelOutputWithPastAndCrossAttentions",
)
DISTILBERT = LayerLayout(
    stack="transformer",
    query="attention.q_lin",
    key="attention.k_lin",
    value="attention.v_lin",
    out="attention.out_lin",
    norm1="sa_layer_norm",
    linear1="ffn.lin1",
    linear2="ffn.lin2",
    norm2="output_layer_norm",
    heads="n_heads",
    activation="activation",
    output="BaseModelOutput",
)
LAYOUTS = {"bert": BERT, "roberta": BERT, "xlm-roberta": BERT, "distilbert": DISTILBERT}
FAST_PATH_ACTIVATIONS = ("gelu", "relu")  # the only ones the fused kernel implements


def _get(module: nn.Module, path: str) -> nn.Module:
    for part in path.split("."):
        module = getattr(module, part)
    return module


def fused_layer(layer: nn.Module, layout: LayerLayout, heads: int, activation: str) -> nn.TransformerEncoderLayer:
    """A TransformerEncoderLayer computing what `layer` computes, sharing every weight but the fused q/k/v."""
    q, k, v = (_get(layer, p) for p in (layout.query, layout.key, layout.value))
    out, lin1, lin2 = (_get(layer, p) for p in (layout.out, layout.linear1, layout.linear2))
    norm1, norm2 = _get(layer, layout.norm1), _get(layer, layout.norm2)
    d_model, ffn = q.in_features, lin1.out_features
    # built on the meta device: every parameter is replaced below, so nothing is allocated or initialized twice
    fused = nn.TransformerEncoderLayer(
        d_model,
        heads,
        dim_feedforward=ffn,
        dropout=0.0,
        activation=activation,
        layer_norm_eps=norm1.eps,
        batch_first=True,
        norm_first=False,  # BERT is post-norm: LayerNorm(x + sublayer(x))
        device="meta",
    )
    attn = fused.self_attn
    attn.in_proj_weight = nn.Parameter(torch.cat([q.weight, k.weight, v.weight]).detach(), requires_grad=False)
    attn.in_proj_bias = nn.Parameter(torch.cat([q.bias, k.bias, v.bias]).detach(), requires_grad=False)
    attn.out_proj.weight, attn.out_proj.bias = out.weight, out.bias
    fused.linear1.weight, fused.linear1.bias = lin1.weight, lin1.bias
    fused.linear2.weight, fused.linear2.bias = lin2.weight, lin2.bias
    fused.norm1.weight, fused.norm1.bias = norm1.weight, norm1.bias
    fused.norm2.weight, fused.norm2.bias = norm2.weight, norm2.bias
    fused.norm2.eps = norm2.eps
    return fused.eval()


def key_padding(attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """Padding positions (True) per row from any mask Transformers hands an encoder: the 2-D 0/1 mask,
    a 4-D boolean mask (True attends) or a 4-D additive float mask (0 attends); None when nothing is masked."""
    if attention_mask is None:
        return None
    if attention_mask.dim() == 2:
        padding = attention_mask == 0
    elif attention_mask.dim() == 4:
        # a bidirectional padding mask masks keys only: a key is real when every query may attend to it
        attends = attention_mask[:, 0] if attention_mask.dtype == torch.bool else attention_mask[:, 0] == 0
        padding = ~attends.all(dim=-2)
    else:
        raise ValueError(f"unexpected attention mask of shape {tuple(attention_mask.shape)}")
    return padding if bool(padding.any()) else None


class FusedEncoder(nn.Module):
    """Stands in for the model's encoder stack (same call signature, same output type)."""

    def __init__(self, layers: list[nn.TransformerEncoderLayer], output: type) -> None:
        super().__init__()
        self.output = output
        # PyTorch packs nested tensors only for an even head count; with an odd one the layers still run fused
        self.skips_padding = layers[0].self_attn.num_heads % 2 == 0
        self.encoder = nn.TransformerEncoder(layers[0], num_layers=1, enable_nested_tensor=self.skips_padding)
        self.encoder.layers = nn.ModuleList(layers)
        self.encoder.num_layers = len(layers)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, *args, **kwargs):
        padding = key_padding(attention_mask)
        if padding is None:
            return self.output(last_hidden_state=self.encoder(hidden_states))
        # Nested tensors need each row's real tokens first. Positions are already in the embeddings and
        # attention ignores order, so moving real tokens to the front (and back afterwards) changes nothing,
        # and left-padded batches skip their padding too.
        order = torch.sort(padding.to(torch.uint8), dim=1, stable=True).indices
        index = order.unsqueeze(-1).expand_as(hidden_states)
        packed = self.encoder(hidden_states.gather(1, index), src_key_padding_mask=padding.gather(1, order))
        return self.output(last_hidden_state=torch.empty_like(packed).scatter_(1, index, packed))


def convertible(model: nn.Module, model_type: str) -> str | None:
    """Why this loaded model cannot take the fused path, or None when it can."""
    layout = LAYOUTS.get(model_type)
    if layout is None:
        return f"model_type {model_type!r} has no fused-encoder layout (supported: {', '.join(LAYOUTS)})"
    config = model.config
    activation = getattr(config, layout.activation, None)
    if activation not in FAST_PATH_ACTIVATIONS:
        return f"its activation is {activation!r}; the fused kernel implements {' and '.join(FAST_PATH_ACTIVATIONS)}"
    if getattr(config, "is_decoder", False) or getattr(config, "add_cross_attention", False):
        return "it is configured as a decoder (causal or cross attention), which the encoder fast path cannot run"
    stack = getattr(model.base_model, layout.stack, None)
    if stack is None or not hasattr(stack, "layer"):
        return f"{type(model.base_model).__name__} has no {layout.stack}.layer stack"
    for layer in stack.layer:
        for path in (layout.query, layout.key, layout.value, layout.out, layout.linear1, layout.linear2):
            linear = _get(layer, path)
            if type(linear) is not nn.Linear or linear.bias is None:
                return f"{path} is {type(linear).__name__}, not a plain nn.Linear with bias (quantized?)"
    return None


def build(model: nn.Module, model_type: str) -> tuple[nn.Module, FusedEncoder]:
    """The original encoder stack and its fused stand-in (not yet installed)."""
    layout = LAYOUTS[model_type]
    # the nested tensors are internal to the fast path and never reach the user: their API notice is noise
    warnings.filterwarnings("ignore", message="The PyTorch API of nested tensors is in prototype stage")
    original = getattr(model.base_model, layout.stack)
    heads = getattr(model.config, layout.heads)
    activation = getattr(model.config, layout.activation)
    layers = [fused_layer(layer, layout, heads, activation) for layer in original.layer]
    return original, FusedEncoder(layers, getattr(modeling_outputs, layout.output))


def install(model: nn.Module, model_type: str, stack: nn.Module) -> None:
    setattr(model.base_model, LAYOUTS[model_type].stack, stack)
