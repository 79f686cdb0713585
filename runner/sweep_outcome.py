"""Which jobs of the sweep launched by this process did not end ok: the exit status of `python -m runner -m`.

Jobs run in this process (Hydra's basic launcher) are noted by the task function itself. Jobs that the runner's
cluster launchers run elsewhere (submitit, Ray: hydra_plugins/runner_launchers) are noted from the JobReturn each
one sends back. Either way only this sweep's jobs count, never older jobs left in a reused sweep folder. Any other
launcher (Hydra's stock ones) reports nothing here: then the sweep folder's records of jobs that started after the
sweep did are read instead (`from_jobs`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime

from hydra.core.utils import JobReturn, JobStatus

log = logging.getLogger(__name__)

DONE = ("ok", "skipped")  # what the task function returns for a job that needs no rerun
STATUS: dict[str, str] = {}  # job -> status, for every job this process heard of in the current sweep
CLOCK_SKEW_S = 60.0  # records written on other machines: their clocks may lag this one's


class _Sweep:
    started = 0.0


def begin() -> None:
    STATUS.clear()
    _Sweep.started = time.time()


def note(job: str, status: str | None) -> None:
    STATUS[job] = status or "crashed"


def failed() -> list[str]:
    return [job for job, status in STATUS.items() if status not in DONE]


def job_folder(job: JobReturn) -> str:
    """The job's own folder (`working_dir` is the worker's current directory, not the job's, without chdir)."""
    try:
        return str(job.hydra_cfg.hydra.runtime.output_dir)
    except AttributeError:
        return str(job.working_dir)


def note_returns(returns: Sequence[JobReturn]) -> list[JobReturn]:
    """Note each job's status, and hand the sweeper returns it can read: a job whose task raised becomes a completed
    job that returned "crashed" (logged with its error), so that the other jobs' report is still written."""
    readable = []
    for job in returns:
        folder = job_folder(job)
        if job.status != JobStatus.COMPLETED:
            log.error("job %s crashed: %r", folder, job._return_value)
            job = crashed(folder, job.overrides)
        note(folder, job.return_value)
        readable.append(job)
    return readable


def gather(pending: Sequence[tuple[str, Sequence[str], Callable[[], JobReturn]]]) -> list[JobReturn]:
    """Each job's JobReturn, from (description, overrides, fetch) as a launcher holds them; a job whose fetch
    raises (killed by SLURM, a Ray worker that died) is logged and counted as crashed, and the others still
    count. Every job is noted (`note_returns`)."""
    returns = []
    for described, overrides, fetch in pending:
        try:
            returns.append(fetch())
        except Exception as error:
            log.error("%s sent no result: %s", described, error)
            returns.append(crashed(described, overrides))
    return note_returns(returns)


def crashed(job: str, overrides: Sequence[str] | None = None) -> JobReturn:
    """A completed JobReturn that says "crashed", which the sweeper reads without raising."""
    return JobReturn(
        overrides=list(overrides or []), working_dir=job, status=JobStatus.COMPLETED, _return_value="crashed"
    )


def from_jobs(jobs: list) -> None:
    """For launchers that report nothing here: the jobs of the sweep folder (`collect_jobs`) that started after
    this sweep did."""
    since = _Sweep.started - CLOCK_SKEW_S
    for job in jobs:
        if job.record is None:
            written = job.dir / ".hydra" / "overrides.yaml"
            if written.exists() and written.stat().st_mtime >= since:
                note(str(job.dir), "missing")
            continue
        try:
            started = datetime.fromisoformat(job.record.started).timestamp()
        except (KeyError, TypeError, ValueError):
            continue
        if started >= since:
            note(str(job.dir), job.record.status)
