"""Ctrl-C and SIGTERM (`timeout`, a batch system's time limit, `kill`) end `python -m runner` the same way: the job
that was running is recorded as interrupted (so `resume=true` runs it again), a sweep's report is written for the
jobs that have records, and the command exits 130 (Ctrl-C) or 143 (SIGTERM) with one line on stderr, no traceback.

SIGTERM becomes an exception in the main thread, as Ctrl-C does. Python runs that handler between bytecodes only,
so a process stuck in a native call (a hung collective, a driver wait) would no longer end on SIGTERM: a watchdog
thread, woken by the signal through `signal.set_wakeup_fd`, ends the process itself when the cleanup has not
finished within GRACE_S.
"""

from __future__ import annotations

import os
import signal
import threading

from runner.record import Error

GRACE_S = 30.0  # after SIGTERM: time for the interrupted job's record and the sweep's report


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C's KeyboardInterrupt (so every `except KeyboardInterrupt`
    that records an interrupted job handles both)."""


def how(interrupt: BaseException) -> str:
    if isinstance(interrupt, Terminated):
        return "SIGTERM"
    return "Ctrl-C" if isinstance(interrupt, KeyboardInterrupt) else type(interrupt).__name__


def interrupted(interrupt: BaseException, when: str = "before the run finished") -> Error:
    """The record's error for a job that an interrupt ended."""
    return Error(type="Interrupted", message=f"interrupted ({how(interrupt)}) {when}")


def exit_status(interrupt: BaseException) -> int:
    return 128 + (signal.SIGTERM if isinstance(interrupt, Terminated) else signal.SIGINT)


def _on_sigterm(signum, frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
    raise Terminated()


def _watchdog(read_fd: int, grace_s: float) -> None:
    while True:
        try:
            got = os.read(read_fd, 64)
        except OSError:
            return
        if not got:
            return
        if signal.SIGTERM in got:
            threading.Event().wait(grace_s)  # the main thread's cleanup runs meanwhile; a clean exit ends us too
            os._exit(exit_status(Terminated()))


def raise_on_sigterm(grace_s: float = GRACE_S) -> None:
    """In the main thread of the launching process: SIGTERM raises `Terminated`, with the watchdog behind it."""
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    signal.signal(signal.SIGTERM, _on_sigterm)
    threading.Thread(target=_watchdog, args=(read_fd, grace_s), name="runner-sigterm-watchdog", daemon=True).start()
