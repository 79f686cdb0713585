"""Falcon through Transformers' shared attention interface, reversibly.

Transformers 5 keeps Falcon outside `ALL_ATTENTION_FUNCTIONS`: its attention always gets a dense 4-D causal mask
(`create_causal_mask(..., allow_is_causal_skip=False)`) and calls SDPA with 71 query heads against one key/value
head and no `enable_gqa`, so PyTorch can only run its math kernel. The conversion gives every FalconAttention a
forward that calls `ALL_ATTENTION_FUNCTIONS[config._attn_implementation]`, as Llama does, so every attention
option applies: SDPA with `is_causal=True` and no mask when the batch has no padding, `enable_gqa` instead of a
copy of the key/value head per query head where Transformers passes it, and the FlashAttention and flex
implementations when the model runs them. The weights are untouched (quantized projections are called as they
are), so reversing is removing the instance attributes: the state dict and the forward are the original ones.

Applied by the convert stage whenever a Falcon model runs an attention other than eager (eager is the reference).
A FlashAttention implementation that Transformers' Falcon class refuses at load (fa3/fa4 in 5.17, whose Falcon
knows FlashAttention-2 only) is loaded as SDPA and switched on by the conversion: the converted forward calls
Transformers' FlashAttention function, which takes the shared key/value heads as they are, runs causal without a
mask and unpads a padded batch through the kernel's varlen entry.
ALiBi Falcons (falcon-rw) keep Transformers' path: their bias is a dense mask whichever kernel runs it, and
Transformers' own SDPA path already hands it to SDPA as one."""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
from torch import nn
from torch.nn.attention import SDPBackend
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.falcon import modeling_falcon

from runner.attention.implementations import EAGER, FLASH_ATTENTION, SDPA
from runner.convert.fused_attention import KIND, FusedAttention
from runner.errors import OptimizationNotApplied

log = logging.getLogger(__name__)

ALWAYS_MASKED = None  # without padding the converted attention is causal without a mask
# Instance attributes the conversion sets on each FalconAttention; reversing deletes exactly these.
ADDED = ("forward", "num_key_value_groups")

# Configs of converted models: their mask may be skipped (None) when it is plain causal, as for Llama.
_converted_configs: dict[int, int] = {}
_original_create_causal_mask: Callable = modeling_falcon.create_causal_mask


def _create_causal_mask(*args, **kwargs):
    """Falcon's `create_causal_mask`, allowed to return None (SDPA's is_causal) for a converted model: Falcon
    asks for a materialized mask only so that ALiBi can be added to it, and converted models have no ALiBi."""
    config = kwargs.get("config", args[0] if args else None)
    if id(config) in _converted_configs:
        kwargs["allow_is_causal_skip"] = True
    return _original_create_causal_mask(*args, **kwargs)


def key_value_heads(config) -> int:
    """Key/value heads that Falcon's fused projection really holds (falcon-7b: 1, for 71 query heads)."""
    if config.new_decoder_architecture:
        return config.num_kv_heads
    return 1 if config.multi_query else config.num_attention_heads


def provides(config, implementation: str, cls: type | None) -> bool:
    """The conversion runs `implementation`, which Transformers' Falcon class refuses at load (see load_as)."""
    from runner.attention.support import supports

    if config.alibi or implementation not in FLASH_ATTENTION or cls is None:
        return False
    return not supports(cls, implementation)


def load_as(config, implementation: str, cls: type | None) -> str:
    """The attn_implementation to load with: SDPA for a FlashAttention the class refuses (the conversion then
    switches to it), else the one asked for."""
    return SDPA if provides(config, implementation, cls) else implementation


def refusal(config, implementation: str) -> str | None:
    if config.alibi and implementation in FLASH_ATTENTION:
        return "this Falcon uses ALiBi, an additive bias that FlashAttention takes no argument for"
    return None


def why_not(model: nn.Module, implementation: str | None = None) -> str | None:
    """Why this loaded model is not converted for `implementation` (the run's attention; by default the one it
    was loaded with), or None when it is a Falcon the conversion applies to."""
    config = getattr(model, "config", None)
    return why_not_for(config, implementation or getattr(config, "_attn_implementation", None))


def why_not_for(config, implementation: str | None) -> str | None:
    """The rule, on a model config and the attention implementation it runs (the checks ask it of a preset)."""
    if getattr(config, "model_type", None) != "falcon":
        return "not a Falcon model"
    if config.alibi:
        return "ALiBi Falcon: the bias is a dense mask whichever kernel runs it; Transformers' own path is kept"
    if implementation == EAGER:
        return "attention=eager is the reference and stays as it is"
    return None


def _split(self, fused_qkv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Query [batch, heads, seq, dim] and key/value [batch, kv heads, seq, dim], without broadcasting the
    key/value heads (FalconAttention._split_heads copies them to every query head for the new architecture)."""
    batch, seq, _ = fused_qkv.shape
    heads, dim = self.num_heads, self.head_dim
    if self.new_decoder_architecture:
        kv = self.config.num_kv_heads
        qkv = fused_qkv.view(batch, seq, kv, heads // kv + 2, dim)
        query = qkv[:, :, :, :-2].reshape(batch, seq, heads, dim)
        key, value = qkv[:, :, :, -2], qkv[:, :, :, -1]
    elif self.multi_query:
        qkv = fused_qkv.view(batch, seq, heads + 2, dim)
        query, key, value = qkv[:, :, :-2], qkv[:, :, -2:-1], qkv[:, :, -1:]
    else:
        qkv = fused_qkv.view(batch, seq, heads, 3, dim)
        query, key, value = qkv[..., 0, :], qkv[..., 1, :], qkv[..., 2, :]
    return query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2)


def fused_forward(
    self,
    hidden_states: torch.Tensor,
    alibi: torch.Tensor | None,
    attention_mask: torch.Tensor | None,
    position_ids: torch.LongTensor | None = None,
    layer_past=None,
    use_cache: bool = False,
    output_attentions: bool = False,
    position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
    **kwargs,
):
    """FalconAttention.forward through `ALL_ATTENTION_FUNCTIONS` (installed per instance by `convert`)."""
    implementation = self.config._attn_implementation
    if implementation == EAGER or alibi is not None or output_attentions:
        # the reference path, unchanged: eager set after converting, ALiBi, or attention weights asked for
        return type(self).forward(
            self, hidden_states, alibi, attention_mask, position_ids, layer_past, use_cache, output_attentions,
            position_embeddings, **kwargs,
        )  # fmt: skip
    batch, seq, _ = hidden_states.shape
    query, key, value = _split(self, self.query_key_value(hidden_states))
    cos, sin = position_embeddings
    query, key = modeling_falcon.apply_rotary_pos_emb(query, key, cos, sin)
    if layer_past is not None:
        key, value = layer_past.update(key, value, self.layer_idx)
    attention = ALL_ATTENTION_FUNCTIONS[implementation]
    if implementation == SDPA and self.num_key_value_groups > 1 and broadcast_heads_at_risk(key, attention_mask):
        output = _with_own_key_value_heads(self, attention, query, key, value, attention_mask)
    else:
        # causal from FalconAttention.is_causal, which Transformers' SDPA and FlashAttention functions read
        output, _ = attention(self, query, key, value, attention_mask, dropout=0.0, scaling=self.inv_norm_factor)
    return self.dense(output.reshape(batch, seq, self.num_heads * self.head_dim)), None


def broadcast_heads_at_risk(key: torch.Tensor, attention_mask: torch.Tensor | None) -> bool:
    """Whether SDPA may run its memory-efficient kernel on a key/value head broadcast to every query head.

    With a mask, Transformers repeats a single key/value head as a view with stride 0 (`repeat_kv`), and PyTorch's
    memory-efficient kernel returns wrong rows for such views (pytorch/pytorch#191937): on the H200, falcon-7b's
    shapes with left padding read 0.16-0.76 relative error from eager (cuDNN, math, or the same kernel on copied
    heads: 0.0044). The kernel is at risk where it is allowed and PyTorch would not try cuDNN first."""
    if attention_mask is None or key.shape[1] != 1 or not key.is_cuda:
        return False
    cuda = torch.backends.cuda
    if not cuda.mem_efficient_sdp_enabled():
        return False
    if torch.compiler.is_compiling() or key.dtype not in (torch.float16, torch.bfloat16):
        return True  # no order to read inside a graph; cuDNN takes half precision only
    if not cuda.cudnn_sdp_enabled():
        return True
    order = torch._C._get_sdp_priority_order()
    return order.index(int(SDPBackend.EFFICIENT_ATTENTION)) < order.index(int(SDPBackend.CUDNN_ATTENTION))


def _with_own_key_value_heads(self, attention, query, key, value, attention_mask) -> torch.Tensor:
    """The attention call with the key/value head copied to every query head, so no kernel sees a stride-0 view."""
    heads = query.shape[1]
    key = key.expand(-1, heads, -1, -1).contiguous()
    value = value.expand(-1, heads, -1, -1).contiguous()
    groups, self.num_key_value_groups = self.num_key_value_groups, 1  # already one key/value head per query head
    try:
        output, _ = attention(self, query, key, value, attention_mask, dropout=0.0, scaling=self.inv_norm_factor)
    finally:
        self.num_key_value_groups = groups
    return output


def attention_modules(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, modeling_falcon.FalconAttention)]


def convert(model: nn.Module, implementation: str | None = None) -> FusedAttention:
    """Route every FalconAttention of `model` through Transformers' attention interface (see why_not first), with
    `implementation` when it differs from the one the model was loaded with (fa4 loaded as SDPA)."""
    from runner.convert.bettertransformer import fingerprint

    before = fingerprint(model)
    config = model.config
    loaded = config._attn_implementation
    modules = attention_modules(model)
    if not modules:
        raise OptimizationNotApplied(f"{KIND}: {type(model).__name__} has no FalconAttention module")
    groups = config.num_attention_heads // key_value_heads(config)
    for module in modules:
        module.forward = fused_forward.__get__(module)
        module.num_key_value_groups = groups  # what Transformers' SDPA reads for enable_gqa / repeat_kv
    _converted_configs[id(config)] = _converted_configs.get(id(config), 0) + 1
    modeling_falcon.create_causal_mask = _create_causal_mask
    if implementation and implementation != loaded:
        config._attn_implementation = implementation  # read per call by the converted forward and the mask

    def undo() -> bool:
        config._attn_implementation = loaded
        for module in modules:
            for name in ADDED:
                vars(module).pop(name, None)
        count = _converted_configs.pop(id(config), 1) - 1
        if count:
            _converted_configs[id(config)] = count
        if not _converted_configs:
            modeling_falcon.create_causal_mask = _original_create_causal_mask
        return config._attn_implementation == loaded and all(
            not set(ADDED) & vars(m).keys() for m in attention_modules(model)
        )

    record = {
        "kind": KIND,
        "what": "FalconAttention -> Transformers' attention interface (ALL_ATTENTION_FUNCTIONS), as Llama: "
        "is_causal without a mask when there is no padding, grouped key/value heads without a copy where "
        "the kernel takes them",
        "layers": len(modules),
        "implementation": config._attn_implementation,
        "loaded_with": loaded,
        "query_heads": config.num_attention_heads,
        "key_value_heads": key_value_heads(config),
    }
    log.info(
        "%s: %d FalconAttention layers now call attn_implementation=%r through Transformers' attention interface "
        "(%d query heads, %d key/value heads)",
        KIND,
        len(modules),
        config._attn_implementation,
        record["query_heads"],
        record["key_value_heads"],
    )
    return FusedAttention(record, undo, before, "Falcon")
