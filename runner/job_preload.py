"""What the forkserver of runner/isolation.py imports once, so that each job forked from it starts sooner.

Nothing here may start CUDA: a process forked after CUDA's start cannot use the GPU. `import torch` does not start
it. The pipeline itself is not preloaded: importing transformers' model classes imports torchao, whose
`prototype.mx_formats.kernels` asks `torch.utils._triton.has_triton()` at import, and that starts CUDA on a GPU
host (seen on the H200, torch 2.11, torchao 0.18: every forked job then failed with "Cannot re-initialize CUDA in
forked subprocess"). Each job imports transformers and the stages itself.
"""

import os

os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")  # torch.cuda.is_available() asks NVML, not CUDA

import torch  # noqa: E402,F401
import torch._dynamo  # noqa: E402,F401  torch.compile's front end, imported by the stages
