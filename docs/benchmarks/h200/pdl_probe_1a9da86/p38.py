"""probe (call 38): the bf16 decode step with every one-row bf16 Linear (no bias) run by scripts/gpu/pdl_probe.py's
Triton kernel (bf16_patch.py), then `python -m runner` in this process:
    PROBE_PDL=1 python .probe/p38.py experiment=decode_limit quant=none convert.fuse_projections=true isolate=false"""
import atexit
import os
import runpy
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bf16_patch  # noqa: E402

atexit.register(lambda: print("probe bf16_gemv calls by shape:", bf16_patch.CALLS, "pdl", bf16_patch.PDL, file=sys.stderr))
runpy.run_module("runner", run_name="__main__", alter_sys=True)
