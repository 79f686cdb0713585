"""Log lines the stack writes at import that tell a user nothing they can act on, dropped before it is imported, so
that the first lines of every run (and of every error message) are the runner's own:
- torchao 0.18 warns for each of its CUDA-only extensions (`_C_mxfp8`, `_C_cutlass_90a`) that a CPU build of torch
  cannot load; on a CUDA build the same warning can mean a broken install, and it still shows there;
- torch 2.13 warns that torchao's `register_constant()` of an Enum is deprecated, once per process.
Anything else these loggers say still shows."""

from __future__ import annotations

import logging
from collections.abc import Callable


def _cuda_extension_on_a_cpu_build(message: str) -> bool:
    import torch  # imported by then: torchao logs this while torch imports it

    return message.startswith("Failed to load") and "_C_" in message and torch.version.cuda is None


def _enum_registration_deprecated(message: str) -> bool:
    return "is an Enum subclass and is now natively supported by torch.compile" in message


NOISE: dict[str, Callable[[str], bool]] = {
    "torchao": _cuda_extension_on_a_cpu_build,
    "torch.utils._pytree": _enum_registration_deprecated,
}


class _Drop(logging.Filter):
    def __init__(self, is_noise: Callable[[str], bool]):
        super().__init__()
        self.is_noise = is_noise

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.is_noise(record.getMessage())


def quiet_library_noise() -> None:
    """Install the filters (once: a second call finds them there)."""
    for name, is_noise in NOISE.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _Drop) for f in logger.filters):
            logger.addFilter(_Drop(is_noise))
