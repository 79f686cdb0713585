"""Which jobs of the sweeps launched by this process did not end ok: the exit status of `python -m runner -m`.

Jobs run in this process (Hydra's basic launcher) are noted by the task function itself. Jobs that cluster
launchers run elsewhere (submitit, Ray: hydra_plugins/runner_launchers) are noted from the JobReturn each one sends
back to this process. Either way only the jobs of this sweep count, never older jobs left in a reused sweep folder.
"""

from __future__ import annotations

from collections.abc import Sequence

from hydra.core.utils import JobReturn, JobStatus

FAILED: list[str] = []  # job folders
DONE = ("ok", "skipped")  # what the task function returns for a job that needs no rerun


def note(job_dir: str, status: str | None) -> None:
    if status not in DONE:
        FAILED.append(job_dir)


def note_returns(returns: Sequence[JobReturn]) -> None:
    """A job that raised (status FAILED) or whose record is not ok."""
    for job in returns:
        where = str(job.working_dir)
        note(where, job.return_value if job.status == JobStatus.COMPLETED else "crashed")
