"""`convert.fused_decode`: the runner's own batch-1 decode step for Llama-architecture models (decoder.py), its
Triton kernels (kernels.py), the same operations in PyTorch for the CPU and for tests (reference.py), and where it
applies (support.py)."""
