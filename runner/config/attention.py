"""Schema of the `attention` group: the `attn_implementation` Transformers loads, and for SDPA, the kernels
PyTorch may pick from (`torch.nn.attention.sdpa_kernel`, the successor of `torch.backends.cuda.sdp_kernel`)."""

from dataclasses import dataclass, field
from enum import Enum


class SdpaKernel(str, Enum):
    flash = "flash"  # FlashAttention-2 inside PyTorch (CUDA: fp16/bf16, no mask; CPU: any)
    efficient = "efficient"  # memory-efficient attention (xFormers' kernel), CUDA only
    cudnn = "cudnn"  # cuDNN's fused attention, CUDA only
    math = "math"  # the reference composition of matmuls and softmax, everywhere


@dataclass
class AttentionConfig:
    name: str = "sdpa"
    implementation: str = "sdpa"  # the value passed as `attn_implementation=`
    # SDPA kernels the run may use; empty lets PyTorch pick. Only with implementation=sdpa. On CUDA the list is
    # a priority order (PyTorch 2.6+); on the CPU PyTorch takes flash whenever it is allowed.
    sdpa_kernels: list[SdpaKernel] = field(default_factory=list)
