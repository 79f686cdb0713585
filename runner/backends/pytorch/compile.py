"""`convert.compile=true`: decode with a static KV cache and a compiled forward (torch.compile in
"reduce-overhead" mode, which replays CUDA graphs), through Transformers' own generate auto-compilation."""

from __future__ import annotations

from typing import Any

from transformers import CompileConfig

from runner.config.run import RunConfig
from runner.errors import OptimizationNotApplied


def compile_options(cfg: RunConfig) -> dict[str, Any]:
    if not cfg.convert.compile:
        return {}
    return {
        "cache_implementation": "static",
        "compile_config": CompileConfig(fullgraph=True, mode="reduce-overhead"),
    }


def require_compiled(model) -> None:
    """Transformers only warns when it cannot compile (a quantizer that forbids it, CPU offload): fail instead."""
    if getattr(model, "_compiled_call", None) is None:
        raise OptimizationNotApplied(
            "convert.compile=true, but Transformers did not compile the decode step (a non-compilable "
            "quantization or CPU offload prevents it; see the log). Run without convert.compile"
        )
