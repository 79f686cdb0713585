"""What the forkserver of runner/isolation.py imports once, so that each job forked from it starts at once.

Nothing here may initialise CUDA: a process forked after CUDA's start cannot use the GPU. Importing the pipeline
does not start it, with one exception handled here: a library that asks `torch.cuda.is_available()` at import
(torchao's float8 utilities do) would start the CUDA driver unless torch answers from NVML instead.
"""

import os

os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")

import runner.app  # noqa: E402,F401  the job's own entry point and everything it imports (torch, transformers)
