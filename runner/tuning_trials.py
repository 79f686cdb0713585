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
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

from runner.job import Job
from runner.record import Record
from runner.record.io import write_record
from runner.results import RESULTS_FILE, TRIALS_DIR

log = logging.getLogger(__name__)

TRIAL_STAGES = ("load", "convert", "warmup", "infer")  # what a trial needs to compile and time the step


def wants_trials(job: Job) -> bool:
    return job.cfg is not None and job.cfg.convert.compile and job.cfg.convert.compile_options.tuning_trials > 1


def trial_job(job: Job, index: int) -> Job:
    """The job as trial `index` runs it: one measured call, no comparison, quality or saving, no further trials."""
    cfg = job.cfg
    options = replace(cfg.convert.compile_options, tuning_trials=1)
    trial_cfg = replace(
        cfg,
        scenario=replace(cfg.scenario, iterations=1),
        convert=replace(cfg.convert, compile_options=options),
        pipeline=replace(cfg.pipeline, stages=[s for s in cfg.pipeline.stages if s in TRIAL_STAGES]),
        compare=replace(cfg.compare, enabled=False),
        save=replace(cfg.save, model=False),
    )
    config = copy.deepcopy(job.config)  # the record's copy of the config, which its checks read, says the same
    config["scenario"]["iterations"] = 1
    config["convert"]["compile_options"]["tuning_trials"] = 1
    config["pipeline"]["stages"] = list(trial_cfg.pipeline.stages)
    config["compare"]["enabled"] = False
    config["save"]["model"] = False
    overrides = [*job.overrides, "convert.compile_options.tuning_trials=1", "scenario.iterations=1"]
    return Job(trial_cfg, config, job.run_dir / TRIALS_DIR / f"trial{index}", overrides)


def ms_per_token(record: Record | None) -> float | None:
    """The decode speed a trial measured, or None when it did not finish."""
    if record is None or record.status != "ok":
        return None
    per_token = record.to_dict().get("measurements", {}).get("generate", {}).get("per_token", {})
    mean = per_token.get("mean")
    return None if mean is None else mean * 1e3


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
    its own each, None: the job's own log): a process that compiled before could reuse its own kernels and picks.
    With no trial finished, the job runs as without trials. Either way its record says what the trials measured."""
    count = job.cfg.convert.compile_options.tuning_trials
    speeds: list[float | None] = []
    for index in range(count):
        trial = trial_job(job, index)
        trial.run_dir.mkdir(parents=True, exist_ok=True)
        with inductor_cache(trial.run_dir / "inductor"):
            speeds.append(ms_per_token(run_isolated(trial, trial.run_dir / "trial.log")))
        found = "did not finish (see its record)" if speeds[-1] is None else f"{speeds[-1]:.3f} ms/token"
        log.info("tuning trial %d of %d: %s", index + 1, count, found)
    finished = [i for i, speed in enumerate(speeds) if speed is not None]
    summary: dict = {"ms_per_token": speeds, "folder": str(job.run_dir / TRIALS_DIR)}
    if finished:
        chosen = min(finished, key=lambda i: speeds[i])
        summary["chosen"] = chosen
        log.info("tuning trials: the job runs with trial %d's autotuning picks", chosen + 1)
        with inductor_cache(trial_job(job, chosen).run_dir / "inductor"):
            record = run_isolated(job, None)
    else:
        summary["chosen"] = None
        log.warning("no tuning trial finished: the job runs with its own compilation")
        record = run_isolated(job, None)
    compiled = record.convert.compile if record.has("convert") and record.convert.has("compile") else None
    if compiled is not None:
        compiled["tuning_trials"] = summary
        write_record(job.run_dir / RESULTS_FILE, record)
    return record
