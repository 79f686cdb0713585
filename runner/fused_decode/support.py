"""Where `convert.fused_decode=true` applies: the checks' refusal before anything loads (`refusal`), and what the
loaded model must look like (`why_not`)."""

from __future__ import annotations

from runner.config.run import RunConfig

ROPE_TYPES = ("default", "linear", "llama3")  # a table of cos/sin by position: no rescaling by sequence length


def refusal(cfg: RunConfig) -> str | None:
    """Why convert.fused_decode=true cannot apply to this run, before loading; None when it can. It fuses the
    projections first, so what convert.fuse_projections refuses (model type, bias, backend, placement) it refuses."""
    from runner.convert import fused_projections
    from runner.quant import QUANT_METHODS, is_quantized, method_of

    key = "convert.fused_decode=true"
    model, convert, scenario = cfg.model, cfg.convert, cfg.scenario
    if is_quantized(cfg.quant) and not method_of(cfg.quant).fused_decode_reads:
        methods = [n for n in QUANT_METHODS.names() if QUANT_METHODS.get(n).fused_decode_reads]
        return (
            f"{key} reads plain weights or the runner's int4/int8 words; quant={cfg.quant.name} (method "
            f"{cfg.quant.method}) holds weights its kernels do not read: use quant=none or a quant of method "
            f"{', '.join(methods)} (quant=int4wo_triton, int8wo_triton)"
        )
    if (why := fused_projections.refusal(cfg, key=key)) is not None:
        return why
    if model.architecture.get("hidden_act", "silu") != "silu":
        return f"{key} computes SiLU(gate) * up; model={model.name} sets hidden_act={model.architecture['hidden_act']}"
    if scenario.name != "generate":
        return f"{key} replaces generate's decode loop; scenario={scenario.name} has none: use scenario=generate"
    if scenario.batch_size != 1:
        return f"{key} decodes one sequence; scenario.batch_size={scenario.batch_size}: use scenario.batch_size=1"
    if scenario.padding_ratio:
        return f"{key} decodes unpadded prompts; scenario.padding_ratio={scenario.padding_ratio}: use 0"
    if convert.compile:
        return (
            f"{key} captures its own CUDA graph of the decode step; convert.compile=true compiles Transformers' "
            "step instead: set convert.compile=false"
        )
    if convert.fuse_projections is False:
        return f"{key} reads q/k/v and gate/up as fused matrices: drop convert.fuse_projections=false"
    if convert.bettertransformer:
        return f"{key} runs its own attention; drop convert.bettertransformer=true"
    return None


def why_not(model) -> str | None:
    """Why this loaded model (its projections already fused, runner/convert/fused_projections.py) cannot decode with
    the fused step, or None."""
    import torch

    config = model.config
    layers = getattr(getattr(model, "model", None), "layers", None)
    if not layers:
        return f"{type(model).__name__} has no decoder layers at model.model.layers"
    for layer in layers:
        if not (hasattr(layer.self_attn, "qkv_proj") and hasattr(layer.mlp, "gate_up_proj")):
            return "a decoder layer's q/k/v or gate/up projections are not fused"
    if getattr(config, "hidden_act", "silu") != "silu":
        return f"hidden_act={config.hidden_act}: the step computes SiLU(gate) * up"
    head_dim = model.model.layers[0].self_attn.head_dim
    on_gpu = next(model.parameters()).device.type == "cuda"
    if on_gpu and head_dim & (head_dim - 1):
        return f"head_dim={head_dim}: the step's attention kernel takes power-of-two head sizes (64, 128, ...)"
    rope = (getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}).get(
        "rope_type", "default"
    )
    if rope not in ROPE_TYPES:
        return f"rope_type={rope} rescales positions by sequence length; the step reads a fixed table ({ROPE_TYPES})"
    if getattr(config, "sliding_window", None):
        return f"sliding_window={config.sliding_window}: the step attends to the whole cache"
    devices = {p.device for p in model.parameters()}
    if len(devices) != 1:
        return f"the model is spread over {sorted(map(str, devices))}; the step needs one device"
    if next(iter(devices)) == torch.device("meta"):
        return "the model's weights are not loaded (meta)"
    return None


def build_decoder(model):
    """The model's FusedDecoder (its projections fused before), or OptimizationNotApplied saying why not."""
    from runner.backends.pytorch.host_loop import eos_ids
    from runner.errors import OptimizationNotApplied
    from runner.fused_decode.decoder import KIND, FusedDecoder

    if (why := why_not(model)) is not None:
        raise OptimizationNotApplied(f"{KIND}: {why}")
    return FusedDecoder(model, eos_ids(model.generation_config))
