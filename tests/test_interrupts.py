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
def test_sigterm_mid_sweep_keeps_the_finished_jobs_and_their_report(tmp_path):
    sweep_dir = tmp_path / "sweep"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RUNNER_CACHE": str(tmp_path / "cache")}
    # job 0 finishes in seconds; job 1 would run for many minutes
    args = ["-m", "model=tiny-llama", "hardware=cpu", "scenario=generate", "scenario.warmup_runs=1",
            "scenario.iterations=1,100000", "isolate=false", f"hydra.sweep.dir={sweep_dir}"]  # fmt: skip
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
print("ready", flush=True)
try:
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
