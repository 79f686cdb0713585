"""probe (call 38, imported by p38.py): the bf16 decode step with every one-row bf16 Linear (no bias) run by scripts/gpu/pdl_probe.py's
Triton kernel through a custom op, configs pinned from the probe's picks (calls 36-37); PROBE_PDL=1 launches them with
programmatic dependent launch (weights loaded before the wait). Then `python -m runner` in this process:
    python .probe/p38.py experiment=decode_limit quant=none convert.fuse_projections=true isolate=false"""
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts", "gpu"))
import pdl_probe  # noqa: E402

PDL = os.environ.get("PROBE_PDL") == "1"
# (out, in) -> (BLOCK_N, BLOCK_K, warps): the probe's PDL picks (calls 36-37); others (2, 2048, 8)
TABLE = {(12288, 4096): (2, 4096, 4), (4096, 4096): (8, 1024, 4), (22016, 4096): (2, 2048, 8),
         (4096, 11008): (8, 1024, 4), (11008, 4096): (2, 2048, 8)}
CALLS = {}


@torch.library.custom_op("probe::bf16_gemv", mutates_args=())
def bf16_gemv(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    shape = tuple(w.shape)
    CALLS[shape] = CALLS.get(shape, 0) + 1
    y = pdl_probe.gemv(x.reshape(-1).contiguous(), w, TABLE.get(shape, (2, 2048, 8)), pdl=PDL)
    return y.reshape(*x.shape[:-1], w.shape[0])


@bf16_gemv.register_fake
def _(x, w):
    return x.new_empty(*x.shape[:-1], w.shape[0])


plain_forward = torch.nn.Linear.forward


def forward(self, x):
    w = self.weight
    if (x.is_cuda and self.bias is None and x.dtype == torch.bfloat16 and w.dtype == torch.bfloat16
            and x.numel() == x.shape[-1] and w.is_contiguous()):
        return torch.ops.probe.bf16_gemv(x, w)
    return plain_forward(self, x)


torch.nn.Linear.forward = forward

