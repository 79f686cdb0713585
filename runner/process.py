"""What every child process the runner starts shares (a spawned job, torchrun under hardware=tp)."""

from __future__ import annotations

import signal
import sys


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
