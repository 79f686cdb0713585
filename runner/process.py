"""What every child process the runner starts shares (a spawned job, torchrun under hardware=tp)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys

from runner.errors import ConfigError


def die_with_parent() -> None:
    """Linux: have the kernel send SIGTERM to this child when its parent dies (killed, not just Ctrl-C), so that
    no orphaned job (a spawned job here, torchrun under hardware=tp) keeps a GPU busy. Elsewhere a no-op."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


# how a job's own process starts (runner/isolation.py); never fork: the child would inherit CUDA and threads
START_METHODS = ("forkserver", "spawn")


def start_method() -> str:
    """RUNNER_START_METHOD, else forkserver where the platform has it (Linux, macOS), else spawn."""
    method = os.environ.get("RUNNER_START_METHOD", "")
    if method and method not in START_METHODS:
        raise ConfigError(f"RUNNER_START_METHOD={method!r} is unknown: use {' or '.join(START_METHODS)}")
    return method or ("forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn")
