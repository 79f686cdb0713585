"""A job in its own process, so that an out-of-memory error, a crash or a hung kernel in one job of a sweep can
neither corrupt nor stop the others. The parent records what happened when the child could not.

On Linux a job's process is forked from a forkserver: one clean process, started once per sweep, that has
imported torch and never touched a GPU, so a job does not import torch again. From a job's launch to its first
stage, a 7B job on the H200 of 2026-11-29 took 4.7-7.9 s this way, against 14-19 s spawned. More cannot be
preloaded: see runner/job_preload.py. Each job gets the parent's environment as it is when the job starts.
RUNNER_START_METHOD=spawn goes back to a fresh interpreter per job. runner/app.py decides when a job runs here;
this module never imports it.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from runner.interrupts import interrupted
from runner.job import Job
from runner.process import die_with_parent, start_method
from runner.progress import set_job
from runner.record import Error, Record
from runner.record.io import read_record, write_record
from runner.results import RESULTS_FILE

log = logging.getLogger(__name__)

LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"  # Hydra's job log format
GRACE_S = 10.0  # after SIGTERM, before SIGKILL
# what the forkserver imports once (torch); runner.job_preload keeps CUDA untouched there (a started CUDA does not
# survive a fork)
PRELOAD = ["runner.job_preload"]

SIGNAL_REASONS = {
    signal.SIGKILL: "usually the kernel's out-of-memory killer: check the host's memory (dmesg)",
    signal.SIGSEGV: "a segmentation fault in native code (a kernel, a driver or an extension)",
    signal.SIGABRT: "an abort in native code (a failed assertion in a library)",
    signal.SIGBUS: "a bus error in native code",
}


def _child(target: Callable | None, job: Job, log_file: str, label: str, environment: dict[str, str]) -> None:
    """Runs in the job's process: the logging Hydra set up in the parent does not cross the process boundary, and
    a forkserver's environment is the one of the sweep's first job: this job gets the parent's as it is now (a
    Hydra `hydra.job.env_set`, a variable set between jobs)."""
    os.environ.clear()
    os.environ.update(environment)
    die_with_parent()  # the forkserver's death
    exit_with_the_runner()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if log_file:
        handlers.append(logging.FileHandler(log_file, mode="a"))
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, handlers=handlers, force=True)
    set_job(label)
    if target is None:
        from runner.execute import execute as target
    target(job)


def exit_with_the_runner() -> None:
    """The job ends when the process that started it is gone, however it ended: a forkserver child's parent is the
    forkserver (die_with_parent covers that one), so a runner killed while the job started would leave it running."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(128 + signal.SIGTERM)

    threading.Thread(target=watch, name="runner-parent-watch", daemon=True).start()


def start_context() -> multiprocessing.context.BaseContext:
    """How a job's process starts (runner.process.start_method), the forkserver with its preload."""
    method = start_method()
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload(PRELOAD)
    return context


def _stop(process: multiprocessing.process.BaseProcess) -> None:
    process.terminate()  # SIGTERM: Python installs no handler, so even a process stuck in a kernel call ends
    process.join(GRACE_S)
    if process.is_alive():
        process.kill()
        process.join()


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        sig = signal.Signals(-code)
        return f"the job's process was killed by {sig.name}: {SIGNAL_REASONS.get(sig, 'a signal from outside')}"
    return f"the job's process exited with code {code} before writing its record (see the job's log)"


def _tail(log_file: Path | None, lines: int = 8) -> str:
    """The end of the job's log: the stage a hung or killed job was in."""
    try:
        return "\n".join(Path(log_file).read_text(errors="replace").splitlines()[-lines:]) if log_file else ""
    except OSError:
        return ""


def run_isolated(
    job: Job, timeout_s: float | None, label: str = "", log_file: Path | None = None, target: Callable | None = None
) -> Record:
    """Run `target(job)` (default: `runner.execute.execute`) in a spawned process and return the job's record."""
    run_dir = job.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    # a record from an earlier attempt must not pass for this one
    (run_dir / RESULTS_FILE).unlink(missing_ok=True)
    start = time.perf_counter()
    process = start_context().Process(
        target=_child,
        args=(target, job, str(log_file or ""), label, dict(os.environ)),
        name=f"runner {label or run_dir.name}",
    )
    try:
        process.start()  # the first job's start waits for the forkserver to import torch: seconds
        process.join(timeout_s)
    except BaseException as interrupt:  # Ctrl-C or SIGTERM in the parent: the child must not outlive it, and the
        if process.pid is not None:  # record says why
            _stop(process)
        if read_record(run_dir) is None:
            _record_failure(job, interrupted(interrupt, "while this job ran"), process.exitcode, start, log_file)
        raise
    timed_out = process.is_alive()
    if timed_out:
        log.error("%s exceeded timeout_s=%s: stopping it", label or "the job", timeout_s)
        _stop(process)
    record = read_record(run_dir)
    if not timed_out and record is not None and record.status in ("ok", "failed"):
        if process.exitcode:
            record.exit_note = f"the process exited with {process.exitcode} after writing this record"
            write_record(run_dir / RESULTS_FILE, record)
        return record
    if timed_out:
        error = Error(
            type="JobTimeout",
            message=f"the job ran longer than timeout_s={timeout_s} s and was killed; "
            "raise timeout_s, or lower scenario.iterations / sizes",
        )
    else:
        error = Error(type="JobCrashed", message=_exit_reason(process.exitcode))
    return _record_failure(job, error, process.exitcode, start, log_file)


def _record_failure(job: Job, error: Error, exitcode, start: float, log_file) -> Record:
    """The record of a job whose process could not write its own (or wrote one that no longer holds)."""
    record = read_record(job.run_dir) or job.new_record()
    error.traceback = ""
    error.extra["log_tail"] = _tail(log_file)
    record.status, record.error = "failed", error
    record.exitcode = exitcode
    record.duration_s = time.perf_counter() - start
    record.finished = datetime.now(UTC).isoformat()
    write_record(job.run_dir / RESULTS_FILE, record)
    return record
