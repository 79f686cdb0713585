"""Stand-ins for a job, run in a spawned child by tests/test_sweep.py. Kept apart from the test modules so that the
child imports nothing heavy (no torch, no conftest)."""

import os
import signal
import time


def killed_like_oom(job):
    os.kill(os.getpid(), signal.SIGKILL)  # what the kernel's out-of-memory killer does


def exits_without_a_record(job):
    os._exit(3)


def hangs(job):
    time.sleep(600)  # a kernel that never returns


def reports_its_start(job):
    """Writes what the child found at its start: was the pipeline already imported (the forkserver's preload)?"""
    import sys

    preloaded = "transformers" in sys.modules and "runner.stages" in sys.modules
    import torch

    fields = [str(preloaded), str(torch.cuda.is_initialized()), os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK", "")]
    (job.run_dir / "start.txt").write_text(" ".join(fields))
    os._exit(0)
