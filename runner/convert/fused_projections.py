"""`convert.fuse_projections`: a Llama-architecture model's q/k/v projections as one matrix and gate/up as another,
reversibly. `true` fuses or is refused before loading; `null` (the default) fuses where the quantization method
prefers it and nothing refuses it (`wanted`); `false` never.

Why: in batch-1 decode every Linear layer is a matrix-vector product bound by memory bandwidth, and a bigger matrix
reads faster. On the H200, one 12288x4096 kernel takes 23.6 us where q, k and v as three 4096x4096 kernels take
29.4, and one 22016x4096 kernel takes 41.1 us where gate and up take 45.2 (docs/benchmarks.md §6g): 0.32 ms of a
4.4 ms token on the 7B shapes (gpt-fast fuses the same way).

How: Transformers' Phi3 is Llama with exactly these two fusions (`qkv_proj` holds q, k, v in that order,
`gate_up_proj` gate then up), and its attention and MLP run the rest as Llama's do (rotary, cache, the attention
interface, the activation). Each LlamaAttention is replaced by a Phi3Attention and each LlamaMLP by a Phi3MLP whose
fused weight is the concatenation; o_proj and down_proj are the same modules. The original modules are kept, their
weights turned into views of the fused matrix (no second copy in memory), so reversing puts the very same modules
back, each weight in storage of its own again: the forward and the state dict are the original ones (plain weights
keep their Parameter objects too; quantized ones get new Parameters over the same values).

Plain weights, or quantized weights whose method joins them by rows (quant=int4wo_triton, int8wo_triton: the
runner's own subclasses concatenate their packed tensors, runner/quant/dequantizing_weight.py, and the fused layer
runs one kernel where there were three or two), on one device only: other quantized layers are no matrices to
concatenate, and tensor parallelism splits q, k and v by their own names. With `true` the checks refuse those before
loading (`refusal`); automatic fusion skips them. Measured end to end on the H200 (§6k): the Triton quants decode
1.13-1.21x faster fused, bf16 8 % slower."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from runner.config.hardware import DeviceKind
from runner.config.run import RunConfig
from runner.errors import OptimizationNotApplied

KIND = "fused_projections"
MODEL_TYPES = ("llama",)  # the presets whose Transformers classes are LlamaAttention / LlamaMLP
ATTENTION = ("q_proj", "k_proj", "v_proj")  # in the order of Phi3's qkv_proj
MLP = ("gate_proj", "up_proj")  # in the order of Phi3's gate_up_proj


def refusal(cfg: RunConfig, key: str = "convert.fuse_projections=true") -> str | None:
    """Why convert.fuse_projections=true cannot apply to this run, before anything loads; None when it can. `key`:
    the option the message names (convert.fused_decode=true fuses too, and refuses what this refuses)."""
    from runner.quant import QUANT_METHODS, is_quantized, method_of

    model = cfg.model
    if model.model_type not in MODEL_TYPES:
        return (
            f"{key} fuses the projections of Llama-architecture models; model={model.name} "
            f"is model_type={model.model_type}: use a llama model (llama, smollm2, tiny-llama) or drop the option"
        )
    biased = [name for name in ("attention_bias", "mlp_bias") if model.architecture.get(name)]
    if biased:
        return f"{key} fuses projections without a bias; model={model.name} sets {biased[0]}"
    if not cfg.backend.runs_torch_modules:
        return f"{key} changes PyTorch modules; backend={cfg.backend.name} runs none"
    if is_quantized(cfg.quant) and not method_of(cfg.quant).weights_join_rows:
        joining = [name for name in QUANT_METHODS.names() if QUANT_METHODS.get(name).weights_join_rows]
        return (
            f"{key} concatenates weight matrices; quant={cfg.quant.name} "
            f"(method {cfg.quant.method}) holds quantized layers that this conversion does not join: use quant=none "
            f"or a quant whose method joins its weights by rows ({', '.join(joining)}: quant=int4wo_triton, ...)"
        )
    if cfg.hardware.kind in (DeviceKind.tp, DeviceKind.multi_gpu):
        return (
            f"{key} needs the model on one device; hardware={cfg.hardware.name} splits it "
            "(tensor parallelism shards q, k and v by their own names): use hardware=cuda or cpu"
        )
    return None


def wanted(cfg: RunConfig) -> bool:
    """Whether this run fuses: convert.fuse_projections as set, or, left at null (automatic), where the quantization
    method prefers fused matrices and nothing refuses the conversion."""
    if cfg.convert.fuse_projections is not None:
        return cfg.convert.fuse_projections
    if cfg.convert.fused_decode:  # its kernels read the fused matrices (refused before loading where they cannot be)
        return True
    from runner.quant import is_quantized, method_of

    preferred = is_quantized(cfg.quant) and method_of(cfg.quant).prefers_fused_projections
    return preferred and refusal(cfg) is None


def chosen_by(cfg: RunConfig) -> str:
    """How the record says the conversion came to run."""
    if cfg.convert.fuse_projections:
        return "convert.fuse_projections=true"
    if cfg.convert.fused_decode:
        return "automatic: convert.fused_decode=true reads q/k/v and gate/up as fused matrices"
    return (
        f"automatic: quant={cfg.quant.name}'s method prefers fused matrices (its GPU kernels read them faster; "
        "convert.fuse_projections=null)"
    )


@dataclass
class _Layer:
    """One decoder layer's original modules, kept while the fused ones run in their place."""

    layer: nn.Module
    attention: nn.Module
    mlp: nn.Module


@dataclass
class FusedProjections:
    record: dict[str, Any]
    before: dict[str, object]  # the model's fingerprint before fusing: module objects and state-dict keys
    layers: list[_Layer] = field(default_factory=list)

    def reverse(self, model: nn.Module) -> dict[str, Any]:
        from runner.convert.bettertransformer import fingerprint

        for kept in self.layers:
            kept.layer.self_attn = kept.attention
            kept.layer.mlp = kept.mlp
            for module, names in ((kept.attention, ATTENTION), (kept.mlp, MLP)):
                for name in names:  # a weight of its own again, not a view of the fused matrix
                    _set_weight(getattr(module, name), getattr(module, name).weight.data.clone())
        forward_restored = not any(_is_fused(module) for module in model.modules())
        state_dict_restored = fingerprint(model) == self.before
        if not (forward_restored and state_dict_restored):
            raise OptimizationNotApplied(
                f"{KIND}: reversing left the model fused (forward restored: {forward_restored}, state dict restored: "
                f"{state_dict_restored}); it must not be saved"
            )
        self.layers = []
        self.record["reversed"] = {"state_dict_restored": True, "forward_restored": True}
        return self.record


def _is_fused(module: nn.Module) -> bool:
    return type(module).__name__ in ("Phi3Attention", "Phi3MLP")


def _joinable(weight: torch.Tensor) -> bool:
    """A plain tensor, or a quantized one that concatenates by rows (runner/quant/dequantizing_weight.py)."""
    return type(weight) is torch.Tensor or getattr(type(weight), "joins_rows", False)


def _plain_linear(module: nn.Module, names: tuple[str, ...]) -> str | None:
    """Why these projections cannot be concatenated (quantized in a layout that does not join, biased, on
    different devices or in different layouts), or None."""
    layers = [getattr(module, name) for name in names]
    for name, layer in zip(names, layers, strict=True):
        if type(layer) is not nn.Linear or not _joinable(layer.weight.data):
            return f"{name} is a {type(layer).__name__} over {type(layer.weight.data).__name__}, not a plain Linear"
        if layer.bias is not None:
            return f"{name} has a bias"
    if len({(layer.weight.device, layer.weight.dtype, type(layer.weight.data)) for layer in layers}) > 1:
        return f"{', '.join(names)} are on different devices, dtypes or layouts"
    return None


def _set_weight(linear: nn.Linear, tensor: torch.Tensor) -> None:
    """linear.weight holds `tensor`: the same Parameter for a plain tensor, a new Parameter over a quantized subclass
    (assigning `.data` there would change the wrapper's shape but not its packed tensors)."""
    if type(tensor) is torch.Tensor:
        linear.weight.data = tensor
    else:
        linear.weight = nn.Parameter(tensor, requires_grad=False)


def _fuse(old: nn.Module, names: tuple[str, ...], new: nn.Module, fused_name: str) -> None:
    """new.<fused_name> holds the concatenated weights; old's weights become views of it."""
    linears = [getattr(old, name) for name in names]
    fused = torch.cat([linear.weight.data for linear in linears])
    setattr(new, fused_name, nn.Linear(fused.shape[1], fused.shape[0], bias=False, device="meta"))
    getattr(new, fused_name).weight = nn.Parameter(fused, requires_grad=False)
    start = 0
    for linear in linears:
        rows = linear.weight.shape[0]
        _set_weight(linear, fused[start : start + rows])
        start += rows


def why_not(model: nn.Module) -> str | None:
    """Why this loaded model's projections cannot be fused (no Llama decoder layers, other attention or MLP classes,
    weights that do not concatenate: a layer left unquantized beside quantized ones, a bias), or None."""
    from transformers.models.llama.modeling_llama import LlamaAttention, LlamaDecoderLayer, LlamaMLP

    layers = [m for m in model.modules() if type(m) is LlamaDecoderLayer]
    if not layers:
        return f"{type(model).__name__} has no Llama decoder layers to fuse"
    for layer in layers:
        if type(layer.self_attn) is not LlamaAttention or type(layer.mlp) is not LlamaMLP:
            return (
                f"a decoder layer runs {type(layer.self_attn).__name__} and {type(layer.mlp).__name__}, "
                "not Transformers' LlamaAttention and LlamaMLP"
            )
        why = _plain_linear(layer.self_attn, ATTENTION) or _plain_linear(layer.mlp, MLP)
        if why:
            return f"{why}; only weights of one layout that concatenate by rows can be fused"
    return None


def convert(model: nn.Module) -> FusedProjections:
    """Fuse every LlamaDecoderLayer's q/k/v and gate/up projections in place; the result reverses it."""
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer
    from transformers.models.phi3.modeling_phi3 import Phi3Attention, Phi3MLP

    if (why := why_not(model)) is not None:
        raise OptimizationNotApplied(f"{KIND}: {why}")
    layers = [m for m in model.modules() if type(m) is LlamaDecoderLayer]
    from runner.convert.bettertransformer import fingerprint

    result = FusedProjections(record={"kind": KIND, "layers": len(layers)}, before=fingerprint(model))
    for layer in layers:
        attention, mlp = layer.self_attn, layer.mlp
        with torch.device("meta"):  # no weights allocated: the fused ones are set below
            fused_attention = Phi3Attention(attention.config, attention.layer_idx)
            fused_mlp = Phi3MLP(attention.config)
        _fuse(attention, ATTENTION, fused_attention, "qkv_proj")
        fused_attention.o_proj = attention.o_proj
        _fuse(mlp, MLP, fused_mlp, "gate_up_proj")
        fused_mlp.down_proj = mlp.down_proj
        fused_mlp.activation_fn = mlp.act_fn
        layer.self_attn, layer.mlp = fused_attention, fused_mlp
        result.layers.append(_Layer(layer, attention, mlp))
    first = result.layers[0].layer
    result.record |= {
        "qkv_proj": list(first.self_attn.qkv_proj.weight.shape),
        "gate_up_proj": list(first.mlp.gate_up_proj.weight.shape),
        "modules": "Phi3Attention, Phi3MLP (transformers)",
    }
    return result
