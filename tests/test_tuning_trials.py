"""convert.compile_options.tuning_trials: each trial is a short job of its own with its own inductor cache, the job
runs with the fastest trial's cache, a failed trial is skipped, the record says what the trials measured, and the
trials' folders are no jobs of the sweep's report. The compiled decode itself needs a GPU; here each process is a
stand-in that records what it was given."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from runner.errors import ConfigError
from runner.job import Job
from runner.record import Record
from runner.record.io import read_record, write_record
from runner.results import RESULTS_FILE
from runner.tuning_trials import run_with_trials, trial_job, wants_trials
from tests.conftest import compose_config


def job_with(tmp_path: Path, trials: int = 1, compile: bool = True, *overrides: str) -> Job:
    """A job of the compiled decode with `trials` (typed on the CPU, where convert.compile itself is refused)."""
    overrides = ("hardware=cpu", "scenario=generate", "scenario.iterations=5", *overrides)
    job = Job.at_the_door(compose_config(list(overrides)), tmp_path / "job", list(overrides))
    options = replace(job.cfg.convert.compile_options, tuning_trials=trials)
    return replace(
        job, cfg=replace(job.cfg, convert=replace(job.cfg.convert, compile=compile, compile_options=options))
    )


class Processes:
    """Stands in for run_isolated: each trial decodes at the speed given for it (None: it fails), the job at 4.0 ms;
    every call's job, log file and inductor cache are kept."""

    def __init__(self, speeds: list[float | None], picks: list[dict] | None = None) -> None:
        self.speeds = list(speeds)
        self.picks = list(picks or [])  # each call's kernel_configs, in call order (none: the record lists none)
        self.calls: list[tuple[Job, Path | None, str | None]] = []

    def __call__(self, job: Job, log_file: Path | None) -> Record:
        self.calls.append((job, log_file, os.environ.get("TORCHINDUCTOR_CACHE_DIR")))
        speed = self.speeds.pop(0) if self.speeds else 4.0
        record = Record.from_dict(
            {"status": "failed"}
            if speed is None
            else {
                "status": "ok",
                "measurements": {"generate": {"per_token": {"mean": speed / 1e3}}},
                "convert": {
                    "compile": {"first_call_s": 1.0, **({"kernel_configs": self.picks.pop(0)} if self.picks else {})}
                },
            }
        )
        job.run_dir.mkdir(parents=True, exist_ok=True)
        write_record(job.run_dir / RESULTS_FILE, record)
        return record


def test_the_job_runs_with_the_cache_of_the_fastest_trial(tmp_path, monkeypatch):
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    job = job_with(tmp_path, trials=3)
    assert wants_trials(job)
    processes = Processes([4.8, 4.2, 5.9])
    record = run_with_trials(job, processes)
    (*trials, (main, main_log, main_cache)) = processes.calls
    trial_dirs = [job.run_dir / "tuning_trials" / f"trial{i}" for i in range(3)]
    assert [t.run_dir for t, _, _ in trials] == trial_dirs
    assert [cache for _, _, cache in trials] == [str(d / "inductor") for d in trial_dirs]  # a cold cache each
    assert [log for _, log, _ in trials] == [d / "trial.log" for d in trial_dirs]
    assert main is job and main_log is None and main_cache == str(trial_dirs[1] / "inductor")  # 4.2 ms: trial 1
    assert "TORCHINDUCTOR_CACHE_DIR" not in os.environ  # given back as it was
    summary = {
        "ms_per_token": [4.8, 4.2, 5.9],
        "folder": str(job.run_dir / "tuning_trials"),
        "chosen": 1,
        "picks_reused": None,  # the stand-in records no kernel picks
        "retuned_kernels": None,
    }
    assert record.convert.compile["tuning_trials"] == summary
    assert read_record(job.run_dir).convert.compile["tuning_trials"] == summary  # on disk too


def test_a_trial_is_short_and_tunes_nothing_further(tmp_path):
    job = job_with(tmp_path, 2, True, "save.model=true")
    trial = trial_job(job, 1).cfg
    assert trial.scenario.iterations == 1 and trial.scenario.warmup_runs == job.cfg.scenario.warmup_runs
    assert trial.convert.compile_options.tuning_trials == 1 and trial.convert.compile
    assert trial.pipeline.stages == ["load", "convert", "warmup", "infer"]
    assert not trial.compare.enabled and not trial.save.model
    assert job.cfg.scenario.iterations == 5 and job.cfg.save.model  # the job's own config is untouched
    assert trial_job(job, 1).overrides[len(job.overrides) :] == [  # its record's command reruns the trial
        "convert.compile_options.tuning_trials=1",
        "scenario.iterations=1",
        "pipeline.stages=[load,convert,warmup,infer]",
        "compare.enabled=false",
        "save.model=false",
    ]


@pytest.mark.slow
def test_trials_and_the_job_run_in_processes_of_their_own(tmp_path, monkeypatch):
    """The real path on the CPU, uncompiled (convert.compile needs a GPU): each trial's record passes the checks a
    record must pass, with its one measured call, and the job keeps its own iterations."""
    from runner.app import run_here
    from runner.isolation import run_isolated

    monkeypatch.chdir(tmp_path)
    job = job_with(tmp_path, 1, False)  # one trial (run_with_trials runs what it is given): two processes, not three
    record = run_with_trials(job, lambda job, log: run_isolated(job, None, "trials", log, run_here))
    assert record.status == "ok", record.error
    trial = read_record(job.run_dir / "tuning_trials" / "trial0")
    assert trial.status == "ok", trial.error
    assert trial.measurements.generate.phase("end_to_end").count == 1
    assert trial.config["scenario"]["iterations"] == 1
    assert (job.run_dir / "tuning_trials" / "trial0" / "trial.log").read_text()
    assert record.measurements.generate.phase("end_to_end").count == 5
    summary = record.convert.compile["tuning_trials"]  # kept, though this uncompiled job has no compile record
    assert summary["ms_per_token"][0] > 0 and summary["chosen"] == 0
    assert read_record(job.run_dir).convert.compile["tuning_trials"] == summary


def test_failed_trials_are_skipped_and_without_any_the_job_compiles_its_own(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "/somewhere/own")
    job = job_with(tmp_path, trials=2)
    processes = Processes([None, 4.5])
    assert run_with_trials(job, processes).convert.compile["tuning_trials"]["chosen"] == 1
    assert processes.calls[-1][2].endswith("trial1/inductor")
    processes = Processes([None, None])
    record = run_with_trials(job, processes)
    assert record.status == "ok" and record.convert.compile["tuning_trials"]["chosen"] is None
    assert processes.calls[-1][2] == "/somewhere/own"  # the job's own cache setting
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == "/somewhere/own"


def test_a_rerun_draws_new_picks_and_a_failed_job_keeps_the_trials_figures(tmp_path):
    job = job_with(tmp_path, trials=2)
    stale = job.run_dir / "tuning_trials" / "trial0" / "inductor" / "old.best_config"
    stale.parent.mkdir(parents=True)
    stale.write_text("{}")  # an earlier run's picks
    write_record(job.run_dir / RESULTS_FILE, Record.from_dict({"status": "ok"}))  # and its record

    def processes(run: Job, log_file):
        if run is job:  # the job itself fails before converting: a record without a convert section
            assert read_record(job.run_dir) is None  # the earlier record is gone before the trials start
            return Record.from_dict({"status": "failed"})
        return Processes([4.4])(run, log_file)

    record = run_with_trials(job, processes)
    assert not stale.exists()
    assert record.status == "failed" and record.convert.compile["tuning_trials"]["ms_per_token"] == [4.4, 4.4]
    assert read_record(job.run_dir).convert.compile["tuning_trials"]["chosen"] == 0


def test_the_record_names_the_kernels_the_job_tuned_again():
    from runner.tuning_trials import retuned_kernels

    def with_picks(picks):
        return Record.from_dict({"status": "ok", "convert": {"compile": {"kernel_configs": picks}}})

    a = {"triton_red_fused_mm_0": {"XBLOCK": 2}, "triton_poi_fused_add_1": {"XBLOCK": 64}}
    b = {"triton_red_fused_mm_0": {"XBLOCK": 8}, "triton_poi_fused_add_1": {"XBLOCK": 64}}
    assert retuned_kernels(with_picks(a), with_picks(dict(a))) == []
    assert retuned_kernels(with_picks(a), with_picks(b)) == ["triton_red_fused_mm_0"]  # tuned again in the job
    assert retuned_kernels(with_picks(a), with_picks({})) == sorted(a)  # another graph: nothing of the trial's
    trial_only = {**a, "triton_per_fused_2": {"XBLOCK": 1}}  # a kernel the job's record lacks counts too
    assert retuned_kernels(with_picks(a), with_picks(trial_only)) == ["triton_per_fused_2"]
    assert (
        retuned_kernels(with_picks(a), None) is None
        and retuned_kernels(Record.from_dict({"status": "ok"}), with_picks(a)) is None
    )


def test_one_trial_is_a_plain_compile(tmp_path):
    assert not wants_trials(job_with(tmp_path))
    assert not wants_trials(job_with(tmp_path, trials=3, compile=False))


@pytest.mark.parametrize(
    ("trials", "compile", "message"),
    [(0, True, "tuning_trials=0: use a count of compilations"), (2, False, "add convert.compile=true")],
)
def test_bad_trial_counts_are_refused(tmp_path, trials, compile, message):
    from runner.checks.compile import usable_tuning_trials

    with pytest.raises(ConfigError, match=message):
        usable_tuning_trials(job_with(tmp_path, trials, compile).cfg)
    usable_tuning_trials(job_with(tmp_path, 3, True).cfg)


def test_the_trials_of_a_job_are_no_jobs_of_its_sweep(tmp_path):
    from runner.report.collect import job_dirs

    for folder in ("0", "1", "1/tuning_trials/trial0", "1/tuning_trials/trial1"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / RESULTS_FILE).write_text("{}")
    assert job_dirs(tmp_path) == [tmp_path / "0", tmp_path / "1"]


@pytest.mark.parametrize(("isolate", "warned"), [("false", True), ("auto", False)])
def test_compiled_jobs_of_a_sweep_in_one_process_are_warned_of(tmp_path, monkeypatch, caplog, isolate, warned):
    """In the sweep's process a later compiled job tuned its kernels again instead of loading the cached picks (H200,
    docs/benchmarks.md §6q): the user who asks for that hears so, once a sweep."""
    from runner import app

    job = job_with(tmp_path, 1, True, f"isolate={isolate}")
    monkeypatch.setattr(app.Job, "at_the_door", lambda *args: job)
    monkeypatch.setattr(app, "run_here", lambda job: "here")
    monkeypatch.setattr(app, "run_isolated", lambda job, *args, **kwargs: "own process")
    app._warn_compiled_jobs_in_one_process.cache_clear()
    with caplog.at_level("WARNING", logger="runner.app"):
        ran = [app.run_job(None, job.run_dir, [], multirun=True) for _ in range(2)]
    assert ran == ["here"] * 2 if isolate == "false" else ["own process"] * 2
    assert sum("tunes its kernels again" in message for message in caplog.messages) == (1 if warned else 0)


@pytest.mark.parametrize(("job_pick", "reused", "retuned"), [(2, True, []), (8, False, ["triton_red_fused_mm_0"])])
def test_the_record_says_whether_the_job_ran_the_chosen_trials_picks(tmp_path, job_pick, reused, retuned):
    picks = [{"triton_red_fused_mm_0": {"XBLOCK": x}} for x in (4, 2, job_pick)]  # trial 0, trial 1 (chosen), job
    record = run_with_trials(job_with(tmp_path, trials=2), Processes([4.5, 4.2], picks))
    summary = record.convert.compile["tuning_trials"]
    assert (summary["chosen"], summary["picks_reused"], summary["retuned_kernels"]) == (1, reused, retuned)
