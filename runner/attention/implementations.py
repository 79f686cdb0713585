"""What each attention implementation needs: a package, a GPU generation, a half-precision dtype. One table,
read by the checks (before loading) and by the docs."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass

from runner.config.attention import SdpaKernel

EAGER, SDPA, FLEX = "eager", "sdpa", "flex_attention"


@dataclass(frozen=True)
class FlashAttention:
    """An external FlashAttention package that Transformers calls for `attn_implementation=<implementation>`."""

    option: str  # the attention= option
    implementation: str
    distribution: str  # the pip distribution Transformers looks for
    module: str  # what it provides (import name)
    install: str
    min_capability: tuple[int, int]
    generation: str  # the GPU generation min_capability stands for

    def installed(self) -> bool:
        """The distribution is installed and its module importable; nothing is imported."""
        try:
            importlib.metadata.distribution(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            return False
        return importlib.util.find_spec(self.module.split(".")[0]) is not None


FLASH_ATTENTION = {
    fa.implementation: fa
    for fa in (
        FlashAttention(
            "fa2",
            "flash_attention_2",
            "flash-attn",
            "flash_attn",
            "pip install flash-attn --no-build-isolation  (compiles CUDA code unless a prebuilt wheel matches; "
            "see docs/attention.md)",
            (8, 0),
            "Ampere",
        ),
        FlashAttention(
            "fa3",
            "flash_attention_3",
            "flash-attn-3",
            "flash_attn_interface",
            "git clone https://github.com/Dao-AILab/flash-attention && cd flash-attention/hopper && "
            "python setup.py install  (a long CUDA build; see docs/attention.md)",
            (9, 0),
            "Hopper",
        ),
        FlashAttention(
            "fa4",
            "flash_attention_4",
            "flash-attn-4",
            "flash_attn.cute",
            "pip install flash-attn-4  (pure Python; its CuTe DSL kernels compile on first use)",
            (9, 0),
            "Hopper",
        ),
    )
}

KNOWN_IMPLEMENTATIONS = (EAGER, SDPA, FLEX, *FLASH_ATTENTION)

# The SDPA kernels that exist per device type, and those that need float16/bfloat16 on CUDA.
SDPA_KERNELS_ON = {
    "cpu": {SdpaKernel.flash, SdpaKernel.math},
    "cuda": {SdpaKernel.flash, SdpaKernel.efficient, SdpaKernel.cudnn, SdpaKernel.math},
}
HALF_PRECISION_ONLY_ON_CUDA = {SdpaKernel.flash, SdpaKernel.cudnn}
# PyTorch's flash kernel takes no attention mask on CUDA (its CPU kernel does); the memory-efficient kernel takes
# no grouped-query attention (enable_gqa), which Transformers passes to SDPA when there is no mask.
NO_MASK_ON_CUDA = {SdpaKernel.flash}
NO_GQA = {SdpaKernel.efficient}
SDPA_MIN_CAPABILITY = {SdpaKernel.flash: (8, 0), SdpaKernel.cudnn: (8, 0), SdpaKernel.efficient: (5, 0)}


def uses_flash_attention(implementation: str) -> bool:
    return implementation in FLASH_ATTENTION
