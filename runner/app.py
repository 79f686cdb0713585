"""The job layer: a composed config, typed once at the door, runs as one job, in this process, in a process of
its own or under torchrun, and comes back as its record (on disk whichever way it ran).

    run_job -> Job.at_the_door -> [run_with_trials: each trial, then the job ->]
               [run_isolated: a spawned child ->] run_here -> execute | run_tensor_parallel

The layers below never import this one."""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

from runner.checks.run_options import isolate_choice
from runner.console import print_summary
from runner.distributed.launch import needs_torchrun, run_tensor_parallel
from runner.execute import execute
from runner.isolation import run_isolated
from runner.job import Job
from runner.progress import set_job
from runner.record import Record
from runner.tuning_trials import run_with_trials, wants_trials

log = logging.getLogger(__name__)


def run_job(
    cfg: Any, run_dir: Path, overrides: list[str], multirun: bool = False, label: str = "", log_file: Path | None = None
) -> Record:
    """One job (`isolate`: auto = its own process in a multirun or under a timeout; hardware=tp: torchrun)."""
    set_job(label)
    job = Job.at_the_door(cfg, run_dir, overrides)
    if job.cfg is None:
        return execute(job)  # fails at validation and records why: no process needed

    if wants_trials(job):  # the trials, then the job, each in a process of its own: fresh inductor state and picks
        return run_with_trials(
            job, lambda job, log: run_isolated(job, job.cfg.timeout_s, label, log or log_file, run_here)
        )
    choice = isolate_choice(job.cfg.isolate)
    if choice is False and multirun and job.cfg.convert.compile and not needs_torchrun(job):
        _warn_compiled_jobs_in_one_process()
    if choice is False or (choice is None and not multirun and job.cfg.timeout_s is None):
        return run_here(job)
    return run_isolated(job, job.cfg.timeout_s, label=label, log_file=log_file, target=run_here)


@functools.cache  # once a process: a Hydra sweep is one
def _warn_compiled_jobs_in_one_process() -> None:
    log.warning(
        "isolate=false: the compiled jobs of this sweep share its process, where a later job of the same shapes tunes "
        "its kernels again instead of loading the picks an earlier one cached (docs/benchmarks.md §6q); "
        "isolate=auto runs each job in its own process"
    )


def run_here(job: Job) -> Record:
    """The job from this process: its pipeline here, or under torchrun (hardware=tp), whose ranks run it."""
    return run_tensor_parallel(job) if needs_torchrun(job) else execute(job)


def report(record: Record) -> None:
    print_summary(record)
