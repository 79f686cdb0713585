"""Does the optimized model still agree with the plain one? Differences of outputs on the same inputs."""

from __future__ import annotations

import dataclasses

import torch

from runner.backends.pytorch.config import PyTorchBackendConfig
from runner.config.attention import AttentionConfig
from runner.config.pipeline import ConvertConfig
from runner.config.quant import QuantConfig
from runner.config.run import RunConfig
from runner.convert import fused_projections
from runner.distributed.tp import enabled as tp_enabled
from runner.distributed.tp import tp_size, unsharded
from runner.quant.base import is_quantized

# Largest max-abs difference, relative to the reference's largest magnitude, still counted as agreement.
# Float32 kernels differ by rounding only; half precision accumulates in other orders.
RELATIVE_TOLERANCE = {"float32": 1e-4, "float16": 2e-2, "bfloat16": 5e-2}
# Tensor parallelism sums each split layer's partial results across GPUs in the model's dtype, an order of
# additions the whole model never uses. Llama-2-7B shapes, eager attention, 256 tokens, 2 GPUs against 1: float32
# 1.8e-5 (within its 1e-4, so the split itself is exact), bfloat16 0.0607 on 2 H200s (2026-11-29) as on 2 H100s
# (top-1 0.898, KL 0.0028): bf16 rounding of the all-reduce, with headroom (docs/benchmarks.md §12).
TP_RELATIVE_TOLERANCE = {"bfloat16": 0.1}
# Quantized weights differ by design: bits -> tolerance, with headroom over the worst relative max diff seen on
# tiny random models, all-MiniLM-L6-v2 and 24-layer random opt-350m (8-bit: 0.04, 4-bit fp4/nf4: 0.37; it grows
# with depth). Beyond it, suspect a broken kernel or compute dtype; top-1 and KL are recorded next to it.
QUANT_RELATIVE_TOLERANCE = {8: 0.15, 4: 0.5}


# Quality budgets of the quality stage, by the same basis: the largest relative perplexity increase over the
# reference (causal LMs) and the least pooled-embedding cosine similarity (encoders) still counted as a pass.
# From real-weight runs on the CPU (SmolLM2-135M, all-MiniLM-L6-v2): docs/quality.md.
PERPLEXITY_INCREASE = {"float32": 0.001, "float16": 0.01, "bfloat16": 0.02, 8: 0.08, 4: 0.8}
COSINE_SIMILARITY = {"float32": 0.99999, "float16": 0.999, "bfloat16": 0.995, 8: 0.98, 4: 0.85}


def _basis(cfg: RunConfig) -> str | int:
    return (
        cfg.quant.bits if is_quantized(cfg.quant) and cfg.quant.bits in PERPLEXITY_INCREASE else cfg.model.dtype.value
    )


def quality_tolerance(cfg: RunConfig) -> tuple[float, str]:
    """The quality stage's bound for this run (relative perplexity increase, or least cosine), and its basis."""
    basis = _basis(cfg)
    table = PERPLEXITY_INCREASE if cfg.model.task.value == "causal_lm" else COSINE_SIMILARITY
    label = f"{basis}-bit" if isinstance(basis, int) else basis
    return table[basis], label


def tolerance_for(cfg: RunConfig) -> tuple[float, str]:
    """The relative max-diff tolerance of this run, and what it is based on."""
    dtype = cfg.model.dtype.value
    if cfg.quant.bits in QUANT_RELATIVE_TOLERANCE:
        return max(QUANT_RELATIVE_TOLERANCE[cfg.quant.bits], RELATIVE_TOLERANCE[dtype]), f"{cfg.quant.bits}-bit"
    if tp_enabled(cfg.hardware) and dtype in TP_RELATIVE_TOLERANCE:
        return TP_RELATIVE_TOLERANCE[dtype], f"{dtype}, tensor parallel"
    return RELATIVE_TOLERANCE[dtype], dtype


def reference_changes(cfg: RunConfig) -> list[str]:
    """What this run changes relative to the reference (eager, unquantized, unconverted, PyTorch)."""
    changes = []
    if cfg.attention.name != "eager":
        changes.append(f"attention={cfg.attention.name}")
    if is_quantized(cfg.quant):
        changes.append(f"quant={cfg.quant.name}")
    if not isinstance(cfg.backend, PyTorchBackendConfig):  # the backend reference_config() runs
        changes.append(f"backend={cfg.backend.name}")
    if tp_enabled(cfg.hardware):
        changes.append(f"hardware=tp over {tp_size(cfg.hardware)} ranks")
    changes += [f"convert.{name}=true" for name in cfg.convert.switched_on()]
    if cfg.convert.fuse_projections is None and fused_projections.wanted(cfg):
        changes.append("convert.fuse_projections (automatic)")
    return changes


def reference_config(cfg: RunConfig) -> RunConfig:
    return dataclasses.replace(
        cfg,
        attention=AttentionConfig(name="eager", implementation="eager"),
        quant=QuantConfig(name="none"),
        # the unquantized model needs more room than budgets sized for the quantized one: let accelerate decide
        # tensor parallel: the whole model on this rank's device
        hardware=unsharded(dataclasses.replace(cfg.hardware, max_memory=None, offload=False)),
        backend=PyTorchBackendConfig(),
        convert=ConvertConfig(),
    )


def compare_outputs(
    output: torch.Tensor,
    reference: torch.Tensor,
    mask: torch.Tensor | None,
    is_logits: bool,
    tolerance: tuple[float, str],  # (value, basis), from tolerance_for()
) -> dict:
    """Differences over real (unpadded) positions; top-1 agreement and KL for logits, cosine otherwise."""
    output, reference = output.float().cpu(), reference.float().cpu()
    if mask is not None and output.dim() == 3:
        keep = mask.bool().cpu()
        output, reference = output[keep], reference[keep]
    diff = (output - reference).abs()
    scale = reference.abs().max().clamp_min(1e-12)
    result = {
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "relative_max_diff": float(diff.max() / scale),
        "tolerance": tolerance[0],
        "tolerance_basis": tolerance[1],
    }
    if is_logits:
        result["top1_agreement"] = float((output.argmax(-1) == reference.argmax(-1)).float().mean())
        log_p = torch.log_softmax(reference, -1)
        log_q = torch.log_softmax(output, -1)
        result["kl_divergence"] = float((log_p.exp() * (log_p - log_q)).sum(-1).mean())
    else:
        cos = torch.nn.functional.cosine_similarity(output.flatten(0, -2), reference.flatten(0, -2), dim=-1)
        result["cosine_similarity_mean"] = float(cos.mean())
        result["cosine_similarity_min"] = float(cos.min())
    result["agrees"] = result["relative_max_diff"] <= result["tolerance"]
    return result
