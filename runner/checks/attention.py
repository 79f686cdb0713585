"""Checks of the attention group and the BetterTransformer conversion, before anything loads: FlashAttention's
dtype, device, GPU generation and package; forced SDPA kernels that cannot run the configured inputs; an
architecture without the implementation."""

from __future__ import annotations

import torch
import transformers

from runner.attention.implementations import (
    FLASH_ATTENTION,
    HALF_PRECISION_ONLY_ON_CUDA,
    KNOWN_IMPLEMENTATIONS,
    NO_GQA,
    NO_MASK_ON_CUDA,
    SDPA,
    SDPA_KERNELS_ON,
    SDPA_MIN_CAPABILITY,
)
from runner.attention.support import model_class, supported_options, supports
from runner.checks.base import check, raise_all
from runner.config.model import DType, Task
from runner.config.run import RunConfig
from runner.devices import device_or_none
from runner.errors import ConfigError
from runner.models.architecture import architecture_config


def _capability(device: torch.device) -> tuple[int, int]:
    return tuple(torch.cuda.get_device_capability(device))


def _gpu(device: torch.device) -> str:
    major, minor = _capability(device)
    return f"{device} ({torch.cuda.get_device_name(device)}, compute capability {major}.{minor})"


@check
def attention_option(cfg: RunConfig) -> None:
    a = cfg.attention
    if a.implementation not in KNOWN_IMPLEMENTATIONS:
        raise ConfigError(
            f"attention.implementation={a.implementation!r} is unknown; valid: {', '.join(KNOWN_IMPLEMENTATIONS)} "
            "(pick an option: attention=eager|sdpa|sdpa_flash|sdpa_efficient|sdpa_cudnn|sdpa_math|fa2|fa3|fa4|flex)"
        )
    if a.sdpa_kernels and a.implementation != SDPA:
        raise ConfigError(
            f"attention.sdpa_kernels={[k.value for k in a.sdpa_kernels]} forces SDPA kernels, but "
            f"attention={a.name} does not use SDPA ({a.implementation}); use attention=sdpa with it"
        )


@check
def flash_attention_can_run(cfg: RunConfig) -> None:
    fa = FLASH_ATTENTION.get(cfg.attention.implementation)
    if fa is None:
        return
    problems = []
    if cfg.model.dtype == DType.float32:
        problems.append(
            f"attention={cfg.attention.name} needs float16 or bfloat16 weights (FlashAttention has no float32 "
            "kernels), and model.dtype=float32: add model.dtype=bfloat16"
        )
    device = device_or_none(cfg.hardware)
    if device is not None and device.type != "cuda":
        problems.append(
            f"attention={cfg.attention.name} needs a CUDA GPU and this run is on {device}: use hardware=cuda on a "
            "GPU host, or attention=sdpa on the CPU"
        )
    elif device is not None and _capability(device) < fa.min_capability:
        need = ".".join(map(str, fa.min_capability))
        problems.append(
            f"attention={cfg.attention.name} needs a GPU of compute capability {need} ({fa.generation}) or newer; "
            f"{_gpu(device)} is older: use attention=sdpa" + (" or attention=fa2" if fa.option != "fa2" else "")
        )
    if not fa.installed():
        problems.append(
            f"attention={cfg.attention.name} needs the {fa.distribution} package ({fa.module}), which is not "
            f"installed: {fa.install}"
        )
    raise_all(problems)


def _query_groups(cfg: RunConfig) -> tuple[int, int] | None:
    """(query heads, key/value heads) of a grouped-query decoder preset; None for plain multi-head attention."""
    try:
        config = architecture_config(cfg.model)
    except ConfigError:
        return None
    heads, kv_heads = getattr(config, "num_attention_heads", None), getattr(config, "num_key_value_heads", None)
    # the conversion's own rule and count of shared heads (only forced kernels on CUDA get here)
    from runner.convert import falcon_attention

    if falcon_attention.why_not_for(config, cfg.attention.implementation) is None:
        kv_heads = falcon_attention.key_value_heads(config)  # its converted attention passes enable_gqa too
    return (heads, kv_heads) if heads and kv_heads and kv_heads < heads else None


def _inputs_have_padding(cfg: RunConfig) -> bool:
    from runner.models.inputs import padded_lengths  # the inputs' own rule; only forced kernels on CUDA ask

    s = cfg.scenario
    return any(real < s.sequence_length for real in padded_lengths(s))


@check
def forced_kernels_can_run(cfg: RunConfig) -> None:
    kernels = cfg.attention.sdpa_kernels
    device = device_or_none(cfg.hardware)
    if not kernels or device is None:
        return
    name, allowed = cfg.attention.name, [k.value for k in kernels]
    usable = [k for k in kernels if k in SDPA_KERNELS_ON.get(device.type, set())]
    if not usable:
        raise ConfigError(
            f"attention={name} forces SDPA kernel(s) {allowed}, which PyTorch has only on CUDA GPUs, and this "
            f"run is on {device}: use hardware=cuda, or attention=sdpa_flash / sdpa_math on the CPU"
        )
    if device.type != "cuda":
        return
    major_minor = _capability(device)
    usable = [k for k in usable if major_minor >= SDPA_MIN_CAPABILITY.get(k, (0, 0))]
    if not usable:
        raise ConfigError(
            f"attention={name} forces SDPA kernel(s) {allowed}, and GPU {_gpu(device)} is too old for them "
            "(flash and cudnn need compute capability 8.0 or newer): use attention=sdpa_efficient or attention=sdpa"
        )
    if cfg.model.dtype == DType.float32:
        usable = [k for k in usable if k not in HALF_PRECISION_ONLY_ON_CUDA]
        if not usable:
            raise ConfigError(
                f"attention={name} forces SDPA kernel(s) {allowed}, which on CUDA need float16 or bfloat16, and "
                "model.dtype=float32: add model.dtype=bfloat16, or use attention=sdpa_efficient"
            )
    if cfg.convert.bettertransformer:
        from runner.convert.bettertransformer import plan  # which path the conversion takes for this architecture

        encoder_fast_path = plan(cfg) == "fused_encoder"
    else:
        encoder_fast_path = False
    padded = _inputs_have_padding(cfg)
    from runner.convert import attention as conversions  # imported here: only forced kernels on CUDA ask

    bias = conversions.always_masked(cfg)
    if bias:
        usable = [k for k in usable if k not in NO_MASK_ON_CUDA]
        if not usable:
            raise ConfigError(
                f"attention={name} forces SDPA kernel(s) {allowed}, and model={cfg.model.name} {bias}, while "
                "PyTorch's flash kernel takes no attention mask on CUDA, so this run needs attention=sdpa_efficient "
                f"or attention=sdpa_cudnn, or a fallback: attention.sdpa_kernels=[{','.join([*allowed, 'efficient'])}]"
            )
    if not padded and cfg.model.task == Task.causal_lm and (groups := _query_groups(cfg)):
        usable = [k for k in usable if k not in NO_GQA]
        if not usable:
            raise ConfigError(
                f"attention={name} forces SDPA kernel(s) {allowed}, and model={cfg.model.name} uses grouped-query "
                f"attention ({groups[0]} query heads share {groups[1]} key/value heads), which Transformers hands "
                "to SDPA as enable_gqa when the batch has no padding; PyTorch's memory-efficient kernel does not "
                "take it, so this run needs attention=sdpa_flash or attention=sdpa_cudnn, or a fallback: "
                f"attention.sdpa_kernels=[{','.join([*allowed, 'flash'])}]"
            )
    if padded and not encoder_fast_path:
        usable = [k for k in usable if k not in NO_MASK_ON_CUDA]
        if not usable:
            raise ConfigError(
                f"attention={name} forces SDPA kernel(s) {allowed}, and PyTorch's flash kernel takes no attention "
                f"mask on CUDA, while scenario.padding_ratio={cfg.scenario.padding_ratio} pads the batch (the "
                "mask is needed), so this run needs attention=sdpa_efficient, a fallback: "
                f"attention.sdpa_kernels=[{','.join([*allowed, 'efficient'])}], or set scenario.padding_ratio=0"
            )


@check
def architecture_supports_attention(cfg: RunConfig) -> None:
    from runner.convert import attention as conversions  # Falcon's and Bloom's own conversions

    cls = model_class(cfg.model)
    why = conversions.refusal(cfg)
    if why:
        raise ConfigError(
            f"attention={cfg.attention.name} cannot run model={cfg.model.name}: {why}. Use attention=sdpa (a fused "
            "SDPA kernel on the GPU) or attention=eager"
        )
    if cls is None or supports(cls, cfg.attention.implementation) or conversions.provides(cfg):
        return
    options = supported_options(cls)
    fix = "use attention=eager" if options == ["eager"] else f"use one it has: attention={' | '.join(options)}"
    raise ConfigError(
        f"attention={cfg.attention.name}: {cls.__name__} (model={cfg.model.name}) has no "
        f"attn_implementation={cfg.attention.implementation!r} in transformers {transformers.__version__}, so it "
        f"needs another attention option: {fix}"
    )


@check
def bettertransformer_applies(cfg: RunConfig) -> None:
    if cfg.convert.bettertransformer:
        # the conversion's own plan for the architecture's classes: imported only when a run asks for it
        from runner.convert.bettertransformer import plan

        plan(cfg, strict=True)
