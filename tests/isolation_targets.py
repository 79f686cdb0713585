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
    """Writes what the child found at its start: was torch already imported (the forkserver's preload), and is
    CUDA usable (not started before the fork)?"""
    import sys

    preloaded = "torch" in sys.modules
    import torch

    usable = not torch.cuda._is_in_bad_fork()
    fields = [str(preloaded), str(usable), os.environ.get("RUNNER_TEST_MARK", "")]
    (job.run_dir / "start.txt").write_text(" ".join(fields))
    os._exit(0)


def sleeps_until_its_runner_is_gone(pid_file):
    """A job's process as runner/isolation.py's _child starts it: it must end when the process that started it ends."""
    from pathlib import Path

    from runner.isolation import exit_with_the_runner

    exit_with_the_runner()
    Path(pid_file).write_text(str(os.getpid()))
    time.sleep(600)
