"""convert.compile_options.tuning_trials=N: compile the decode step N times, each in a process of its own with a cold
inductor cache of its own, so each makes its own autotuning picks; decode one measured run with each, then run the
job with the cache of the fastest, whose picks it reuses.

Why: on the H200 the picks decide a bf16 7B step's speed. Two profiled runs of the same settings each had one kernel
1.5-3x slower than the other run's (steps of 5.8 and 4.7 ms, where the best jobs take 4.2), and coordinate descent,
which times each kernel alone, cannot see it (docs/benchmarks.md §6p). A trial costs one more load and compilation (for
a 7B model about a minute on the H200). The trials' folders, each with its record, log and inductor cache, stay under
the job's folder in tuning_trials/; the job's record lists their speeds and the one chosen
(convert.compile.tuning_trials).

The job layer (runner/app.py) calls `run_with_trials` with its way of running a job in a process of its own; this
module never imports it."""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from runner.config.run import RunConfig
from runner.job import Job
from runner.record import Convert, Record
from runner.record.io import read_record, write_record
from runner.results import RESULTS_FILE, TRIALS_DIR

log = logging.getLogger(__name__)

TRIAL_STAGES = ("load", "convert", "warmup", "infer")  # what a trial needs to compile and time the step


def wants_trials(job: Job) -> bool:
    return job.cfg is not None and job.cfg.convert.compile and job.cfg.convert.compile_options.tuning_trials > 1


def trial_changes(cfg: RunConfig) -> dict[str, Any]:
    """What a trial changes in its job, by dotted key: one measured call, no comparison, quality or saving, no further
    trials. One table for the typed config, the record's copy of it (which the record's checks read) and the command
    that reruns the trial."""
    return {
        "convert.compile_options.tuning_trials": 1,
        "scenario.iterations": 1,
        "pipeline.stages": [stage for stage in cfg.pipeline.stages if stage in TRIAL_STAGES],
        "compare.enabled": False,
        "save.model": False,
    }


def trial_job(job: Job, index: int) -> Job:
    """The job as trial `index` runs it (trial_changes), in tuning_trials/trial{index} of the job's folder."""
    changes = trial_changes(job.cfg)
    cfg, config = job.cfg, copy.deepcopy(job.config)
    for key, value in changes.items():
        *parents, last = path = key.split(".")
        cfg = _replaced(cfg, path, value)
        functools.reduce(dict.__getitem__, parents, config)[last] = value
    overrides = [*job.overrides, *(f"{key}={_override(value)}" for key, value in changes.items())]
    return Job(cfg, config, job.run_dir / TRIALS_DIR / f"trial{index}", overrides)


def _replaced(section: Any, path: list[str], value: Any) -> Any:
    """A copy of the nested dataclass `section` with the field at `path` set to `value`."""
    head, *rest = path
    return replace(section, **{head: _replaced(getattr(section, head), rest, value) if rest else value})


def _override(value: Any) -> str:
    """A value as a Hydra override writes it."""
    if isinstance(value, bool):
        return str(value).lower()
    return f"[{','.join(value)}]" if isinstance(value, list) else str(value)


def ms_per_token(record: Record | None) -> float | None:
    """The decode speed a trial measured, or None when it did not finish."""
    if record is None or record.status != "ok" or not record.measurements or not record.measurements.generate:
        return None
    per_token = record.measurements.generate.phase("per_token")
    return None if per_token is None else per_token.mean * 1e3


@contextlib.contextmanager
def inductor_cache(folder: Path) -> Iterator[None]:
    """Inductor's caches in `folder` within the block (the runner's persistent cache gives way to a set one)."""
    before = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(folder)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
        else:
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = before


def run_with_trials(job: Job, run_isolated: Callable[[Job, Path | None], Record]) -> Record:
    """Each trial, then the job with the fastest trial's cache, through `run_isolated(job, log_file)` (a process of
    its own each, None: the job's own log): a process that compiled before could reuse its own kernels and picks, so
    the job runs in a process of its own even with isolate=false, and timeout_s applies to each process. With no
    trial finished, the job runs as without trials. Either way its record says what the trials measured, and whether
    the job ran with the chosen trial's picks (picks_reused: inductor's caches could be off)."""
    count = job.cfg.convert.compile_options.tuning_trials
    (job.run_dir / RESULTS_FILE).unlink(missing_ok=True)  # an earlier attempt's record is not this job's
    log.info("tuning trials: %d compilations of the decode step, each in a process of its own, then the job", count)
    trials = [trial_job(job, index) for index in range(count)]
    speeds: list[float | None] = []
    for trial in trials:
        cache = trial.run_dir / "inductor"
        shutil.rmtree(cache, ignore_errors=True)  # a rerun's trial draws new picks too
        trial.run_dir.mkdir(parents=True, exist_ok=True)
        with inductor_cache(cache):
            speeds.append(ms_per_token(run_isolated(trial, trial.run_dir / "trial.log")))
        found = "did not finish (see its record)" if speeds[-1] is None else f"{speeds[-1]:.3f} ms/token"
        log.info("tuning trial %s: %s", trial.run_dir.name, found)
    finished = [i for i, speed in enumerate(speeds) if speed is not None]
    summary: dict = {"ms_per_token": speeds, "folder": str(job.run_dir / TRIALS_DIR), "chosen": None}
    if finished:
        chosen = min(finished, key=lambda i: speeds[i])
        summary["chosen"] = chosen
        log.info("tuning trials: the job runs with %s's autotuning picks", trials[chosen].run_dir.name)
        with inductor_cache(trials[chosen].run_dir / "inductor"):
            record = run_isolated(job, None)
        retuned = retuned_kernels(record, read_record(trials[chosen].run_dir))
        summary["picks_reused"] = None if retuned is None else not retuned
        summary["retuned_kernels"] = retuned
    else:
        log.warning("no tuning trial finished: the job runs with its own compilation")
        record = run_isolated(job, None)
    if not record.has("convert"):  # the job failed before its convert stage: the trials' figures are kept anyway
        record.convert = Convert()
    if not record.convert.has("compile") or record.convert.compile is None:
        record.convert.compile = {}
    record.convert.compile["tuning_trials"] = summary
    write_record(job.run_dir / RESULTS_FILE, record)
    return record


def retuned_kernels(record: Record, trial: Record | None) -> list[str] | None:
    """The kernels whose autotuning pick is not the same in the job's and the trial's records, a kernel listed in
    only one of them included: tuned again in the job (torch 2.11 still re-tunes a kernel whose pick came from halving
    its reduction block, pytorch#181789; all of them with inductor's caches off). None: either record lists no picks
    to compare."""
    picks = [
        (r.convert.compile or {}).get("kernel_configs") if r is not None and r.has("convert") else None
        for r in (record, trial)
    ]
    if None in picks or not picks[0]:
        return None
    job, chosen = picks
    return sorted(name for name in job.keys() | chosen.keys() if job.get(name) != chosen.get(name))
