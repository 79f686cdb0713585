"""Sweeps through Hydra's cluster launchers on the CPU: submitit (its local executor stands in for SLURM) and a local
Ray cluster, each job asking for the GPUs of its own hardware group, the sweep report written as for local sweeps."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from runner.distributed.resources import job_gpus
from runner.errors import ConfigError
from runner.results import read_results
from tests.conftest import CONF, ROOT, compose_config

pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="needs the cluster extra")

# launcher jobs already run in processes of their own (submitit, Ray workers): isolate=false saves a spawn per job
TINY = ["hardware=cpu", "scenario.iterations=2", "scenario.warmup_runs=0", "scenario.sequence_length=16"]
TINY += ["isolate=false"]
LAUNCHERS = {"slurm": "SlurmLauncher", "slurm_local": "LocalLauncher", "ray_cluster": "RayLauncher"}
no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="checks what a host without GPUs refuses")


def hardware_of(*overrides: str):
    return OmegaConf.to_object(compose_config(list(overrides)).hardware)


@pytest.mark.parametrize(
    ("overrides", "gpus"),
    [
        (["hardware=cpu"], 0),
        (["hardware=tp", "hardware.tp_on_cpu=true"], 0),
        (["hardware=tp"], 2),
        (["hardware=tp", "hardware.num_gpus=4"], 4),
        (["hardware=multi_gpu", "hardware.num_gpus=3"], 3),
        (["hardware=multi_gpu", "hardware.max_memory={0: 1GB, 1: 1GB}"], 2),
    ],
)
def test_each_job_asks_for_the_gpus_of_its_hardware_group(overrides, gpus):
    assert job_gpus(hardware_of(*overrides)) == gpus


def test_one_gpu_and_auto_follow_the_cluster():
    auto = hardware_of("hardware=auto")
    assert job_gpus(hardware_of("hardware=cuda")) == 1
    assert (job_gpus(auto, cluster_gpus=0), job_gpus(auto, cluster_gpus=8), job_gpus(auto)) == (0, 1, 1)


def test_multi_gpu_under_a_launcher_must_say_how_many():
    with pytest.raises(ConfigError, match="hardware.num_gpus=N"):
        job_gpus(hardware_of("hardware=multi_gpu"))


@pytest.mark.parametrize("name", sorted(LAUNCHERS))
def test_launcher_files_name_the_per_job_launchers(name):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"hydra/launcher={name}"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_ == f"hydra_plugins.runner_launchers.launchers.{LAUNCHERS[name]}"
    # a GPU count left open, so each job asks for its own
    assert (launcher.ray.remote.num_gpus if name == "ray_cluster" else launcher.gpus_per_node) is None


def test_submitit_arrays_get_their_gpu_count(tmp_path):
    from hydra_plugins.runner_launchers.launchers import LocalLauncher

    launcher = LocalLauncher(submitit_folder=str(tmp_path / "%j"), timeout_min=5, gpus_per_node=None, tasks_per_node=1)
    assert launcher._executor(2)._executor.parameters["gpus_per_node"] == 2
    assert launcher._executor(0)._executor.parameters["gpus_per_node"] == 0


def test_a_launcher_whose_plugin_is_missing_says_what_to_install(tmp_path):
    # hide hydra-ray-launcher: Hydra still finds the runner's launcher, which names the package to install
    code = (
        "import runpy, sys; sys.modules['hydra_plugins.hydra_ray_launcher'] = None; "
        f"sys.argv = ['runner', '-m', 'hydra/launcher=ray_cluster', 'hydra.sweep.dir={tmp_path / 's'}']; "
        "runpy.run_module('runner', run_name='__main__')"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "hydra/launcher=ray_cluster needs hydra-ray-launcher: pip install -e '.[cluster]'" in result.stderr


@no_gpu
def test_a_job_needing_more_gpus_than_there_are_fails_before_any_job_starts(cli, tmp_path):
    sweep = ["-m", "hydra/launcher=slurm_local", "hardware=cpu,cuda", *TINY[1:]]
    result = cli(*sweep, f"hydra.sweep.dir={tmp_path / 's'}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "error: job #1 (hardware=cuda " in result.stderr and "needs 1 GPU(s) but the cluster has 0" in result.stderr
    assert not (tmp_path / "s" / "0" / "results.json").exists()  # refused before submitting, not after


def _cli_in(folder, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RUNNER_CACHE": str(folder / "cache")}
    return subprocess.run([sys.executable, "-m", "runner", *args], cwd=folder, env=env, capture_output=True, text=True)


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    """One sweep per cluster launcher, run once and shared by the tests that read it (a cluster start each, not
    two): attention eager and sdpa at hidden size 64, which run, and at 60, an odd head size for Llama and so a load
    failure. Jobs 0 and 2 (eager, sdpa at 64) run; 1 and 3 fail. Returns (sweep folder, CompletedProcess)."""
    done = {}

    def run(launcher: str):
        if launcher not in done:
            work = tmp_path_factory.mktemp(f"sweep-{launcher}")
            sweep = ["-m", f"hydra/launcher={launcher}", "attention=eager,sdpa", "model.architecture.hidden_size=64,60"]
            done[launcher] = work / "sweep", _cli_in(work, *sweep, *TINY, f"hydra.sweep.dir={work / 'sweep'}")
        return done[launcher]

    return run


def _assert_sweep_reported(sweep_dir):
    records = [read_results(sweep_dir / str(n)) for n in range(4)]
    assert [r["status"] for r in records] == ["ok", "failed", "ok", "failed"]
    assert [r["config"]["attention"]["name"] for r in records[::2]] == ["eager", "sdpa"]
    summary = (sweep_dir / "summary.md").read_text()
    assert "4 job(s), 2 ok, 2 failed" in summary
    assert "| 0 | eager | 64 | ok |" in summary and "| 2 | sdpa | 64 | ok |" in summary


@pytest.mark.slow
def test_submitit_sweep_runs_each_job_and_writes_the_report(launched):
    sweep_dir, _ = launched("slurm_local")
    _assert_sweep_reported(sweep_dir)
    assert len(list((sweep_dir / ".submitit").glob("*/*_result.pkl"))) == 4  # submitit ran every job


@pytest.mark.slow
def test_ray_sweep_runs_each_job_and_writes_the_report(launched):
    pytest.importorskip("ray")
    sweep_dir, result = launched("ray_cluster")
    _assert_sweep_reported(sweep_dir)
    assert "Started a local Ray instance" in result.stderr + result.stdout
    assert "'num_gpus': 0" in result.stderr + result.stdout  # each job's request, from hardware=cpu


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["slurm_local", "ray_cluster"])
def test_a_failed_job_on_a_cluster_launcher_fails_the_command(launched, launcher):
    # the jobs run in other processes (on a cluster: other machines), yet the exit status must still say that one
    # failed, for scripts and CI that launch sweeps
    if launcher == "ray_cluster":
        pytest.importorskip("ray")
    sweep_dir, result = launched(launcher)
    assert result.returncode == 1, result.stderr[-3000:]
    assert f"2 job(s) failed: {sweep_dir / '1'}, {sweep_dir / '3'};" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_a_failed_job_of_an_earlier_sweep_in_the_same_folder_does_not_fail_this_one(launched, tmp_path):
    # the earlier sweep's jobs 1 and 3 failed; a second, smaller sweep into (a copy of) the same folder runs only job 0
    earlier, first = launched("slurm_local")
    assert first.returncode == 1 and "2 job(s) failed" in first.stderr
    shutil.copytree(earlier, tmp_path / "sweep")
    sweep = ["-m", "hydra/launcher=slurm_local", *TINY, f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    second = _cli_in(tmp_path, *sweep, "model.architecture.hidden_size=64", "overwrite=true")  # a used folder: say so
    assert second.returncode == 0, second.stderr[-3000:]
    assert "4 job(s), 2 ok, 2 failed" in (tmp_path / "sweep" / "summary.md").read_text()  # the report shows all


@pytest.mark.slow
def test_hydras_stock_launcher_also_fails_the_command_when_a_job_fails(cli, tmp_path):
    # submitit_local is the plugin's own launcher, which tells this process nothing: the records are read instead
    sweep_dir = tmp_path / "sweep"
    result = cli(
        "-m",
        "hydra/launcher=submitit_local",
        "model.architecture.hidden_size=64,60",
        *TINY,
        f"hydra.sweep.dir={sweep_dir}",
    )
    assert result.returncode == 1, result.stderr[-3000:]
    assert f"1 job(s) failed: {sweep_dir / '1'};" in result.stderr
