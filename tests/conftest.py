"""Shared fixtures: compose configs the way `python -m runner` does, and run jobs in-process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from runner.config import register_configs
from runner.execute import execute
from runner.job import Job

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

register_configs()


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def compose_config(overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


@pytest.fixture
def run_job(tmp_path, monkeypatch):
    """Run one job in-process with small defaults; returns its record as written to results.json."""
    monkeypatch.setenv("RUNNER_CACHE", str(tmp_path / "cache"))
    counter = iter(range(10_000))

    def run(*overrides: str, fast: bool = True):
        base = ["hardware=cpu", "scenario.iterations=3", "scenario.warmup_runs=1"] if fast else []
        cfg = compose_config([*base, *overrides])
        return execute(Job.at_the_door(cfg, tmp_path / f"run{next(counter)}", list(overrides))).to_dict()

    return run


@pytest.fixture
def cli(tmp_path):
    """Run `python -m runner ARGS` in a subprocess, in a scratch folder; returns the CompletedProcess."""

    def run(*args: str, cwd: Path | None = None, timeout: int = 300):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "RUNNER_CACHE": str(tmp_path / "cache")}
        return subprocess.run(
            [sys.executable, "-m", "runner", *args],
            cwd=cwd or tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run
