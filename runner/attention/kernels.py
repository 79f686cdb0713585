"""Forcing SDPA kernels around warmup and inference, and turning PyTorch's bare "no kernel" error into one
that names the option, the reason and the fix."""

from __future__ import annotations

import contextlib
import inspect
import re
import warnings

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from runner.config.attention import AttentionConfig, SdpaKernel
from runner.errors import RunnerError

BACKENDS = {
    SdpaKernel.flash: SDPBackend.FLASH_ATTENTION,
    SdpaKernel.efficient: SDPBackend.EFFICIENT_ATTENTION,
    SdpaKernel.cudnn: SDPBackend.CUDNN_ATTENTION,
    SdpaKernel.math: SDPBackend.MATH,
}
# What PyTorch says when none of the allowed kernels can run the call (the wording changed across versions).
NO_KERNEL = ("No available kernel", "No viable backend")


# On CUDA the list's order is a priority order where PyTorch supports that (2.6+); elsewhere PyTorch's own.
PRIORITY = {"set_priority": True} if "set_priority" in inspect.signature(sdpa_kernel).parameters else {}


# PyTorch's explanations of a refused kernel, told apart from unrelated warnings raised during the same call
REASON = re.compile(r"kernel|attention|attn|sdp|mask|head.?dim|dtype|dropout|nested|\bsm\d", re.IGNORECASE)


class KernelUnavailable(RunnerError):
    """A forced SDPA kernel cannot run these inputs on this device."""


def kernel_names(kernels: list[SdpaKernel]) -> str:
    return ",".join(k.value for k in kernels)


def unavailable(attention: AttentionConfig, error: RuntimeError, warned: list[str]) -> KernelUnavailable:
    allowed = kernel_names(attention.sdpa_kernels)
    # Newer PyTorch lists each rejected backend's reasons in the error itself; older versions warn them first.
    first, *detail = str(error).splitlines()
    reasons = [line.strip(" -") for line in detail if line.strip() and not line.startswith("Rejected backends")]
    reasons += [r.strip() for r in warned if REASON.search(r)]
    reasons = [r.rstrip(".") for r in reasons if not r.endswith(":")]  # drop "... not used because:" headers
    why = "; ".join(dict.fromkeys(reasons)) or f"{first} (PyTorch gave no reason; only flash and math exist on the CPU)"
    fallback = kernel_names([*attention.sdpa_kernels, SdpaKernel.math])
    return KernelUnavailable(
        f"attention={attention.name}: PyTorch cannot run the forced SDPA kernel(s) [{allowed}] on these inputs: "
        f"{why}. Fix: pick another kernel (attention=sdpa lets PyTorch choose), allow a fallback with "
        f"attention.sdpa_kernels=[{fallback}], or change the inputs (float16/bfloat16 for flash and cudnn; "
        "no padding mask for flash on CUDA: scenario.padding_ratio=0)"
    )


_default_order_settled = False


def settle_default_order() -> None:
    """Let PyTorch set its default SDPA kernel order before `sdpa_kernel` reads it to restore it on exit.

    PyTorch (2.11 on the H200) fixes that order at its first attention call on CUDA, with cuDNN first on Hopper
    and Blackwell. Read before that call, it is the order without cuDNN's preference; `sdpa_kernel(set_priority=True)`
    restores what it read, and PyTorch keeps it from then on: every later job of the process that lets PyTorch
    pick ran another kernel than the same job alone (on the H200, the efficient kernel instead of cuDNN, which
    for Falcon's broadcast key/value head gave wrong logits). One tiny attention call on the GPU settles it."""
    global _default_order_settled
    if _default_order_settled or not torch.cuda.is_initialized():
        return  # a job on the CPU: PyTorch's CPU kernels do not use the order
    x = torch.zeros(1, 1, 1, 8, device="cuda", dtype=torch.float16)
    torch.nn.functional.scaled_dot_product_attention(x, x, x)
    _default_order_settled = True


@contextlib.contextmanager
def forced_sdpa_kernels(attention: AttentionConfig):
    """`torch.nn.attention.sdpa_kernel` with the configured kernels, in priority order; nothing when none are.
    PyTorch's own order is back as it was after the context, also for the first job of a process."""
    if not attention.sdpa_kernels:
        yield
        return
    settle_default_order()
    backends = [BACKENDS[k] for k in attention.sdpa_kernels]
    # PyTorch explains a refused kernel in warnings right before raising; keep them for the message, and
    # hand every other warning on unchanged.
    with warnings.catch_warnings(record=True) as caught:
        try:
            with sdpa_kernel(backends, **PRIORITY):
                yield
        except RuntimeError as error:
            if not any(marker in str(error) for marker in NO_KERNEL):
                raise
            raise unavailable(attention, error, [str(w.message) for w in caught]) from error
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
