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
