"""The torchscript exporter's `scaled_dot_product_attention`, with a boolean mask kept in the query's dtype.

torch's symbolic (symbolic_opset14, up to torch 2.13 at least) turns a boolean mask into 0 / -inf with float32
constants. In a float16 model the exporter's type promotion then casts the scores and the values to float32, so
attention's output and the residual stream after it are float32; the next LayerNormalization, whose scale and
bias are float16, makes ONNX Runtime refuse the graph ("Type parameter (T) of Optype (LayerNormalization) bound to
different types"). transformers hands SDPA a boolean mask (BERT, DistilBERT, Llama, ...). The dynamo exporter's
SDPA (onnxscript) already builds the mask in the query's dtype."""

from __future__ import annotations

import contextlib

import torch
from torch.onnx import symbolic_helper, symbolic_opset14

NAME, OPSET = "aten::scaled_dot_product_attention", 14  # a symbolic registered at 14 serves opsets 14 and up


@symbolic_helper.parse_args("v", "v", "v", "v", "f", "b", "v", "b")
def _sdpa(g, query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
    dtype = query.type().dtype()
    boolean = not symbolic_helper._is_none(attn_mask) and attn_mask.type().dtype() == torch.bool
    if not boolean or dtype in (None, torch.float32):
        return symbolic_opset14.scaled_dot_product_attention(
            g, query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa
        )
    zero = g.op("Constant", value_t=torch.tensor([0.0], dtype=dtype))
    additive = g.op("Where", attn_mask, zero, g.op("Constant", value_t=torch.tensor([-float("inf")], dtype=dtype)))
    out = symbolic_opset14.scaled_dot_product_attention(
        g, query, key, value, additive, dropout_p, is_causal, scale, enable_gqa
    )
    # a row with every key masked: softmax gives NaN there, torch's boolean branch 0. Found from the mask, so that
    # a NaN from anything else (an fp16 overflow) still shows.
    allowed = g.op("Cast", attn_mask, to_i=torch.onnx.TensorProtoDataType.FLOAT)
    any_allowed = symbolic_helper._reducesum_helper(g, allowed, axes_i=[-1], keepdims_i=1)
    has_key = g.op("Greater", any_allowed, g.op("Constant", value_t=torch.tensor([0.0])))
    return g.op("Where", has_key, out, zero)


@contextlib.contextmanager
def typed_sdpa_mask():
    """Export SDPA with `_sdpa` while inside; torch's own symbolic again afterwards."""
    torch.onnx.register_custom_op_symbolic(NAME, _sdpa, OPSET)
    try:
        yield
    finally:
        torch.onnx.unregister_custom_op_symbolic(NAME, OPSET)
