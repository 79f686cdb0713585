"""Ctrl-C and SIGTERM (a `timeout`, a batch system's time limit) in the middle of a sweep: the running job is
recorded as interrupted, the finished ones keep their results and get their report, the command exits 128 + the
signal's number with one line and no traceback; a cleanup that hangs still ends the process."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner.results import read_results
from tests.conftest import ROOT


def _wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.parametrize("isolate", ["false", "true"])  # jobs in the sweep's process, and each in its own (default)
def test_sigterm_mid_sweep_keeps_the_finished_jobs_and_their_report(tmp_path, isolate):
    sweep_dir = tmp_path / "sweep"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RUNNER_CACHE": str(tmp_path / "cache")}
    # job 0 finishes in seconds; job 1 would run for many minutes
    args = ["-m", "model=tiny-llama", "hardware=cpu", "scenario=generate", "scenario.warmup_runs=1",
            "scenario.iterations=1,100000", f"isolate={isolate}", f"hydra.sweep.dir={sweep_dir}"]  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "runner", *args], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        log = sweep_dir / "1" / "runner.log"
        _wait_for(lambda: log.exists() and "stage infer" in log.read_text(), 240, "job 1 to start measuring")
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith("error: interrupted (SIGTERM); report of the jobs with records")
    assert read_results(sweep_dir / "0")["status"] == "ok"
    interrupted = read_results(sweep_dir / "1")
    assert interrupted["status"] == "failed"
    assert interrupted["error"]["type"] == "Interrupted" and "SIGTERM" in interrupted["error"]["message"]
    rows = list(csv.DictReader((sweep_dir / "summary.csv").open()))
    assert [(row["job"], row["status"]) for row in rows] == [("0", "ok"), ("1", "failed")]


HANGING_CLEANUP = """
import sys, time
from runner.interrupts import Terminated, raise_on_sigterm
raise_on_sigterm(grace_s=1.0)
try:
    print("ready", flush=True)  # inside the try: the signal may come before print returns
    while True:
        time.sleep(0.05)
except Terminated:
    print("terminated", flush=True)
    while True:  # a cleanup that never ends
        time.sleep(0.05)
"""


def test_sigterm_ends_the_process_when_its_cleanup_hangs():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-c", HANGING_CLEANUP], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout.readline().strip() == "ready"
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert "terminated" in stdout, stderr  # SIGTERM became an exception first: the cleanup had its chance
    assert process.returncode == 128 + signal.SIGTERM
    assert time.monotonic() - started < 15


def test_interrupts_are_named_in_the_record_and_the_exit_status():
    from runner.interrupts import Terminated, exit_status, how

    assert (how(Terminated()), exit_status(Terminated())) == ("SIGTERM", 143)
    assert (how(KeyboardInterrupt()), exit_status(KeyboardInterrupt())) == ("Ctrl-C", 130)
    assert isinstance(Terminated(), KeyboardInterrupt)  # every `except KeyboardInterrupt` records it as interrupted


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in state  # a zombie has ended


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_jobs_process_ends_when_the_runner_that_started_it_is_killed(tmp_path):
    pid_file = tmp_path / "job.pid"
    runner = (
        "import multiprocessing, sys\n"
        "from tests.isolation_targets import sleeps_until_its_runner_is_gone\n"
        "from runner.isolation import start_context\n"
        "job = start_context().Process(target=sleeps_until_its_runner_is_gone, args=(sys.argv[1],))\n"
        "job.start()\n"
        "job.join()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-c", runner, str(pid_file)], cwd=ROOT, env=env)
    try:
        _wait_for(lambda: pid_file.exists() and pid_file.read_text(), 120, "the job to start")
        job = int(pid_file.read_text())
        assert _running(job)
        process.kill()  # SIGKILL: no handler, no cleanup of the runner's own
        process.wait()
        _wait_for(lambda: not _running(job), 20, "the job to end with its runner")
    finally:
        process.kill()
        if pid_file.exists() and pid_file.read_text() and _running(int(pid_file.read_text())):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


def _processes_with(text: str) -> list[int]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text in cmdline.read_bytes().decode(errors="replace") and _running(int(cmdline.parent.name)):
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigterm_stops_the_tensor_parallel_ranks_and_records_the_job(tmp_path):
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RUNNER_CACHE": str(tmp_path / "cache")}
    args = ["hardware=tp", "hardware.tp_on_cpu=true", "model=tiny-llama", "scenario=generate",
            "scenario.warmup_runs=1", "scenario.iterations=100000", f"hydra.run.dir={run_dir}"]  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "runner", *args], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    ranks = str(run_dir / "ranks")  # the ranks' command lines name the job's spec file under it
    try:
        _wait_for(lambda: len(_processes_with(ranks)) >= 3, 240, "torchrun and its two ranks")
        time.sleep(5)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=120)
        _wait_for(lambda: not _processes_with(ranks), 30, "the ranks to end")
    finally:
        process.kill()
        for pid in _processes_with(ranks):
            os.kill(pid, signal.SIGKILL)
    assert process.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    record = read_results(run_dir)
    assert record["error"]["type"] == "Interrupted" and "SIGTERM" in record["error"]["message"]
