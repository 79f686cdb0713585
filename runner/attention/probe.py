"""What attention actually ran: one extra forward pass under `torch.profiler`, inside the run's inference
context, read by op and kernel names. Asking for a kernel proves nothing; the profiler shows what executed."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import re
import sys
import tempfile
from collections import Counter
from typing import Any

from torch.profiler import ProfilerActivity, profile

from runner.attention.implementations import EAGER, FLASH_ATTENTION, FLEX, SDPA

# The aten op behind each SDPA kernel (CUDA and CPU variants).
SDPA_KERNEL_OPS = {
    "aten::_scaled_dot_product_flash_attention": "flash",
    "aten::_scaled_dot_product_flash_attention_for_cpu": "flash",
    "aten::_scaled_dot_product_efficient_attention": "efficient",
    "aten::_scaled_dot_product_cudnn_attention": "cudnn",
    "aten::_scaled_dot_product_attention_math": "math",
    "aten::_scaled_dot_product_attention_math_for_mps": "math",
    "aten::_scaled_dot_product_fused_attention_overrideable": "overrideable",
}
FUSED_ENCODER_OP = "aten::_transformer_encoder_layer_fwd"
NESTED_FROM_MASK_OP = "aten::_nested_tensor_from_mask"
# compiled regions too: once warm, flex attention runs inside a compiled graph that carries no "flex" name
ATTENTION_NAME = re.compile(
    r"flash|fmha|flex|attn|attention|sdpa|dot_product|transformer_encoder|compiled region", re.IGNORECASE
)
KINETO_BANNER = re.compile(r"^(USDT|STAGE):\S+ \S+ \d+:\d+ \S+\.cpp:\d+\]")
HOW = "one extra forward pass over the measured batch under torch.profiler, inside the run's inference context"


@contextlib.contextmanager
def _without_kineto_banner():
    """Some torch builds print profiler start/stop lines straight to fd 2; pass everything else through."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            lines = tmp.read().decode(errors="replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if not KINETO_BANNER.match(line))
            if kept:
                sys.stderr.write(kept)


def profile_forward(backend, inputs: dict) -> Counter:
    """Op and kernel names of one forward pass, with their counts."""
    # CPU activity only: the aten SDPA ops show which kernel PyTorch dispatched. On an H100, forward passes after a
    # profile with CUDA activity (CUPTI) ran 27-43% slower in the same process (scripts/overhead.py), which would
    # skew every later job of an in-process sweep.
    with _without_kineto_banner(), profile(activities=[ProfilerActivity.CPU]) as prof:
        with backend.inference_context():
            backend.forward(inputs)
        backend.clock().synchronize()
    names: Counter = Counter()
    for event in prof.events():
        names[event.name] += 1
        for kernel in getattr(event, "kernels", None) or []:
            names[getattr(kernel, "name", str(kernel))] += 1
    return names


def summarize(names: Counter, requested: Any, implementation: str | None) -> dict[str, Any]:
    """The `attention` section of results.json."""
    calls: Counter = Counter()
    for op, kernel in SDPA_KERNEL_OPS.items():
        if names[op]:
            calls[kernel] += names[op]
    ops = Counter({n: c for n, c in names.items() if ATTENTION_NAME.search(n)})
    record = {
        "requested": requested.name,
        "implementation_requested": requested.implementation,
        "sdpa_kernels_forced": [k.value for k in requested.sdpa_kernels],  # empty: PyTorch picked
        "implementation": implementation,
        "sdpa_kernels": [k for k, _ in calls.most_common()],
        "sdpa_kernel_calls": dict(calls),
        "fused_encoder_layer_calls": names[FUSED_ENCODER_OP],
        "nested_tensors": names[NESTED_FROM_MASK_OP] > 0,
        "ops": {n[:160]: c for n, c in ops.most_common(12)},
        "how": HOW,
    }
    fa = FLASH_ATTENTION.get(requested.implementation)
    if fa is not None:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            record["package"] = f"{fa.distribution}=={importlib.metadata.version(fa.distribution)}"
    return record


def problems(
    record: dict[str, Any], names: Counter, expected_implementation: str, fused_encoder: bool, padded: bool
) -> list[str]:
    """Where what ran differs from what was asked; empty when the run did what its config says."""
    found: list[str] = []
    kernels = set(record["sdpa_kernels"])
    seen = " ".join(n for n in names if n not in SDPA_KERNEL_OPS).lower()

    def own_kernel(word: str) -> bool:
        # named in an op or kernel, or at least attention ran neither through SDPA nor as eager's softmax
        # (compiled kernels do not always carry the library's name)
        return word in seen or not (kernels or names["aten::softmax"] or names["aten::_softmax"])

    if fused_encoder:
        # the converted encoder bypasses the model's attention: check the fused kernel and the nested tensors
        if not record["fused_encoder_layer_calls"]:
            found.append("the fused encoder kernel (aten::_transformer_encoder_layer_fwd) never ran")
        elif padded and not record["nested_tensors"]:
            found.append("the batch has padding, but no nested tensor was built, so padding was computed")
        return found
    if record["implementation"] != expected_implementation:
        found.append(f"the model runs attn_implementation={record['implementation']!r}")
    allowed = record["sdpa_kernels_forced"]
    if expected_implementation == EAGER and kernels:
        found.append(f"eager attention ran SDPA kernels {sorted(kernels)}")
    elif expected_implementation == SDPA and not kernels:
        found.append("no SDPA kernel ran")
    elif expected_implementation == SDPA and allowed and not kernels <= set(allowed):
        found.append(f"SDPA ran {sorted(kernels)}, outside the allowed {allowed}")
    elif expected_implementation in FLASH_ATTENTION and (kernels or not own_kernel("flash")):
        found.append(f"no FlashAttention op or kernel was seen (SDPA kernels: {sorted(kernels) or 'none'})")
    elif expected_implementation == FLEX and (kernels or not own_kernel("flex")):
        found.append("no FlexAttention op or kernel was seen")
    return found
