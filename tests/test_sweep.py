"""Sweeps through the real command line: every job in its own process, failures and timeouts recorded with their
reason while the other jobs finish, resume, the report at the end, and replaying a job from its record."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
import torch
import yaml
from omegaconf import OmegaConf

from runner.isolation import run_isolated
from runner.job import Job
from runner.progress import sweep_size
from runner.results import read_results
from tests import isolation_targets
from tests.conftest import CONF, ROOT, compose_config

FAST = ["hardware=cpu", "scenario.iterations=2", "scenario.warmup_runs=1", "scenario.sequence_length=16"]
SWEEP = ["-m", "attention=eager,sdpa", "scenario.batch_size=1,2", *FAST]
# The shared sweep and the resume test run their jobs in-process (isolate=false) to keep the suite fast; the
# default, one process per job, is what the failure and timeout sweeps below go through.


def runner_cli(*args: str, cwd, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RUNNER_CACHE": str(cwd / "cache")}
    return subprocess.run(
        [sys.executable, "-m", "runner", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """One 2 x 2 sweep shared by the tests that only read it."""
    work = tmp_path_factory.mktemp("sweep")
    result = runner_cli(*SWEEP, "isolate=false", f"hydra.sweep.dir={work / 'sweep'}", cwd=work)
    return work / "sweep", result


@pytest.mark.slow
def test_sweep_writes_every_record_the_summary_and_plots(sweep):
    sweep_dir, result = sweep
    assert result.returncode == 0, result.stderr[-3000:]
    records = [read_results(sweep_dir / str(n)) for n in range(4)]
    assert [r["status"] for r in records] == ["ok"] * 4
    assert {(r["config"]["attention"]["name"], r["config"]["scenario"]["batch_size"]) for r in records} == {
        ("eager", 1),
        ("eager", 2),
        ("sdpa", 1),
        ("sdpa", 2),
    }
    assert all(r["memory"]["cpu_rss_peak_scope"] == "measured calls" for r in records)
    header = (sweep_dir / "summary.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["job", "attention", "scenario.batch_size"]  # the varied keys are columns
    assert "forward_ms" in header and "speedup" in header
    summary = (sweep_dir / "summary.md").read_text()
    assert "4 job(s), 4 ok, 0 failed" in summary
    assert "baseline: attention=eager, quant=none, per scenario.batch_size" in summary
    for chart in ("latency", "throughput", "speedup", "memory"):
        png = sweep_dir / f"{chart}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000, chart
        assert f"![{chart}]({chart}.png)" in summary


@pytest.mark.slow
def test_sweep_shows_which_job_of_how_many_is_running(sweep):
    _, result = sweep
    output = result.stdout + result.stderr
    for k in range(1, 5):
        assert f"job {k} of 4: " in output
    assert output.count("stage infer") == 4  # one line per stage, not one per iteration


@pytest.mark.slow
def test_the_eager_job_is_its_own_baseline(sweep):
    sweep_dir, _ = sweep
    rows = {row["job"]: row for row in _csv(sweep_dir / "summary.csv")}
    for job, row in rows.items():
        if row["attention"] == "eager":
            assert float(row["speedup"]) == 1.0, job
        else:
            eager = next(
                r
                for r in rows.values()
                if r["attention"] == "eager" and r["scenario.batch_size"] == row["scenario.batch_size"]
            )
            assert float(row["speedup"]) == pytest.approx(float(eager["forward_ms"]) / float(row["forward_ms"]))


def _csv(path):
    import csv

    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_a_job_replayed_from_its_record_composes_the_same_config(sweep):
    sweep_dir, _ = sweep
    record = read_results(sweep_dir / "1")
    replay = record["replay"].split()
    assert replay[:3] == ["python", "-m", "runner"]
    result = runner_cli(*replay[3:], "--cfg", "job", "--resolve", cwd=sweep_dir.parent)
    assert result.returncode == 0, result.stderr[-2000:]
    replayed = yaml.safe_load(result.stdout)
    assert json.loads(json.dumps(replayed, default=str)) == record["config"]


@pytest.mark.slow
def test_failures_are_recorded_with_their_reason_and_the_sweep_goes_on(cli, tmp_path):
    # hidden_size=60 gives Llama an odd head size: transformers refuses it (its config class, or while loading);
    # sequence_length=0 is refused by validation before anything loads
    sweep_dir = tmp_path / "sweep"
    result = cli(
        "-m",
        "model.architecture.hidden_size=64,60",
        "scenario.sequence_length=8,0",
        *FAST[:3],
        f"hydra.sweep.dir={sweep_dir}",
    )
    assert result.returncode == 1
    assert "3 job(s) failed" in result.stderr
    records = {n: read_results(sweep_dir / str(n)) for n in range(4)}
    hidden_and_length = {
        n: (r["config"]["model"]["architecture"]["hidden_size"], r["config"]["scenario"]["sequence_length"])
        for n, r in records.items()
    }
    by_case = {case: records[n] for n, case in hidden_and_length.items()}
    assert by_case[(64, 8)]["status"] == "ok"
    odd_heads = by_case[(60, 8)]  # refused by the config class's own validation (transformers 5.2x), else at load
    assert odd_heads["status"] == "failed" and odd_heads["error"]["message"]
    if odd_heads["error"]["type"] != "ConfigError":
        assert odd_heads["stages"][0] == "load"
    else:
        assert "model.architecture of model=tiny-llama (LlamaConfig)" in odd_heads["error"]["message"]
    for case in ((64, 0), (60, 0)):
        assert by_case[case]["error"]["type"] == "ConfigError"
        assert "scenario.sequence_length=0 must be at least 1" in by_case[case]["error"]["message"]
    summary = (sweep_dir / "summary.md").read_text()
    assert "4 job(s), 1 ok, 3 failed" in summary
    assert "ConfigError: scenario.sequence_length=0 must be at least 1" in summary
    assert f"{odd_heads['error']['type']}: " in summary


@pytest.mark.slow
def test_a_job_over_its_timeout_is_killed_and_recorded(cli, tmp_path):
    sweep_dir = tmp_path / "sweep"
    result = cli("-m", "scenario.batch_size=1,2", "timeout_s=1", *FAST, f"hydra.sweep.dir={sweep_dir}")
    assert result.returncode == 1
    for n in range(2):  # the second job still ran after the first was killed
        record = read_results(sweep_dir / str(n))
        assert record["status"] == "failed"
        assert record["error"]["type"] == "JobTimeout"
        assert "timeout_s=1.0" in record["error"]["message"]
        assert record["config"]["scenario"]["batch_size"] == n + 1
        assert f"job {n + 1} of 2" in record["error"]["log_tail"]  # the end of its log says how far it got
    assert "JobTimeout: the job ran longer than timeout_s=1.0" in (sweep_dir / "summary.md").read_text()


@pytest.mark.slow
def test_resume_reruns_only_jobs_without_an_ok_result(sweep, tmp_path):
    sweep_dir = tmp_path / "sweep"
    shutil.copytree(sweep[0], sweep_dir)
    (sweep_dir / "3" / "results.json").unlink()  # as if the sweep had been killed during its last job
    before = {n: read_results(sweep_dir / str(n))["started"] for n in range(3)}
    result = runner_cli(*SWEEP, "isolate=false", "resume=true", f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert output.count("skipped (resume=true)") == 3
    assert {n: read_results(sweep_dir / str(n))["started"] for n in range(3)} == before  # untouched
    assert read_results(sweep_dir / "3")["status"] == "ok"
    assert "4 job(s), 4 ok, 0 failed" in (sweep_dir / "summary.md").read_text()


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        (isolation_targets.killed_like_oom, "killed by SIGKILL: usually the kernel's out-of-memory killer"),
        (isolation_targets.exits_without_a_record, "exited with code 3 before writing its record"),
    ],
)
def test_a_child_that_dies_is_recorded_as_crashed(tmp_path, target, reason):
    container = {"name": "doomed", "scenario": {"batch_size": 1}}
    job = Job(None, container, tmp_path / "job", ["scenario.batch_size=1"])
    record = run_isolated(job, None, target=target).to_dict()
    assert record["status"] == "failed" and record["error"]["type"] == "JobCrashed"
    assert reason in record["error"]["message"]
    assert record["config"] == container and record["overrides"] == ["scenario.batch_size=1"]
    assert read_results(tmp_path / "job") == record  # written by the parent, atomically
    assert not list((tmp_path / "job").glob(".*.tmp"))


def test_a_hung_child_is_stopped_at_its_timeout(tmp_path):
    start = time.monotonic()
    job = Job(None, {"name": "hung"}, tmp_path / "job", [])
    record = run_isolated(job, 0.5, target=isolation_targets.hangs)
    assert time.monotonic() - start < 15
    assert record.error.type == "JobTimeout" and "timeout_s=0.5" in record.error.message


@pytest.mark.skipif(sys.platform != "linux", reason="the forkserver is the default on Linux")
def test_a_job_starts_with_torch_imported_and_cuda_usable(tmp_path, monkeypatch):
    """The forkserver imported torch once; the job forked from it must not pay that again, must find CUDA
    unstarted (a CUDA started before a fork is unusable in the child) and the parent's environment."""
    monkeypatch.delenv("RUNNER_START_METHOD", raising=False)
    for mark in ("first", "second"):  # the second job must see the parent's environment of now, not the server's
        monkeypatch.setenv("RUNNER_TEST_MARK", mark)
        job = Job(None, {"name": "start"}, tmp_path / mark, [])
        run_isolated(job, 120, target=isolation_targets.reports_its_start)
        assert (tmp_path / mark / "start.txt").read_text() == f"True True {mark}"


def test_spawn_stays_available_and_a_bad_start_method_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNNER_START_METHOD", "spawn")
    job = Job(None, {"name": "start"}, tmp_path / "job", [])
    run_isolated(job, 120, target=isolation_targets.reports_its_start)
    assert (tmp_path / "job" / "start.txt").read_text().startswith("False True")  # a fresh interpreter
    monkeypatch.setenv("RUNNER_START_METHOD", "fork")  # fork would copy a started CUDA into the job
    result = runner_cli("isolate=true", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "RUNNER_START_METHOD='fork' is unknown: use forkserver or spawn" in result.stderr


@pytest.mark.gpu
def test_a_job_in_its_own_process_runs_on_the_gpu(tmp_path):
    """The forkserver must leave CUDA unstarted: on the H200 a preload that imported transformers' model classes
    (torchao asks Triton about the GPU at import) made every forked job fail to start CUDA."""
    result = runner_cli("hardware=cuda", "isolate=true", f"hydra.run.dir={tmp_path / 'job'}", cwd=tmp_path)
    record = read_results(tmp_path / "job")
    assert record["status"] == "ok", (record.get("error"), result.stderr[-2000:])


def test_sweep_size_counts_the_experiment_params_and_command_line_sweeps(tmp_path):
    saved = {
        "hydra": {
            "sweeper": {"params": {"attention": "eager,sdpa", "scenario.batch_size": "1,2,4,8"}},
            "overrides": {"task": ["scenario.batch_size=1,2,4", "hardware=cpu"]},  # replaces the experiment's
        }
    }
    OmegaConf.save(saved, tmp_path / "multirun.yaml")
    assert sweep_size(str(tmp_path)) == 6
    assert sweep_size(str(tmp_path / "elsewhere")) is None


EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiments_compose_and_sweep_existing_options(experiment):
    from runner.config.load import to_run_config
    from runner.errors import ConfigError

    path = CONF / "experiment" / f"{experiment}.yaml"
    assert path.read_text().startswith("# @package _global_")
    params = OmegaConf.load(path).hydra.sweeper.params
    for key, values in params.items():
        if "." not in key:  # a group: every option it sweeps must exist, or be on its way (skipped, named)
            missing = [v for v in str(values).split(",") if not (CONF / key / f"{v}.yaml").exists()]
            if missing:
                pytest.skip(f"{experiment}: {key} options not added yet: {missing}")
    first = [f"{key}={str(values).split(',')[0]}" for key, values in params.items()]
    cfg = compose_config([f"experiment={experiment}", *first])
    try:
        to_run_config(cfg)
    except ConfigError as e:  # these studies target a GPU: on a GPU host they type, on the CPU they say so
        if torch.cuda.is_available():
            raise
        assert str(e).startswith("hardware=cuda needs a CUDA GPU, but torch sees none"), str(e)


def test_a_write_that_fails_midway_leaves_the_previous_record_whole(tmp_path):
    from runner.results import write_json_atomic

    path = tmp_path / "results.json"
    write_json_atomic(path, {"status": "ok", "figures": [1, 2, 3]})

    class Unserializable:
        @property
        def value(self):
            raise RuntimeError("killed while writing")

    with pytest.raises(RuntimeError):
        write_json_atomic(path, {"status": "ok", "figures": [Unserializable()]})
    assert read_results(tmp_path) == {"status": "ok", "figures": [1, 2, 3]}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temporary file left behind


def test_a_job_that_sent_nothing_back_or_raised_counts_as_crashed_and_the_others_still_count():
    from hydra.core.utils import JobReturn, JobStatus

    from runner import sweep_outcome

    def killed():
        raise RuntimeError("job 12345 was killed by SLURM (TIMEOUT)")

    ok = JobReturn(working_dir="/s/0", status=JobStatus.COMPLETED, _return_value="ok")
    raised = JobReturn(working_dir="/s/2", status=JobStatus.FAILED, _return_value=KeyError("overrides"))
    sweep_outcome.begin()
    returns = sweep_outcome.gather(
        [("job #0", ["a=1"], lambda: ok), ("job #1", ["a=2"], killed), ("job #2", ["a=3"], lambda: raised)]
    )
    assert [r.return_value for r in returns] == ["ok", "crashed", "crashed"]  # readable: the sweeper won't raise
    assert sweep_outcome.failed() == ["job #1", "/s/2"]
