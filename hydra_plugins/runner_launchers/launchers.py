"""Hydra's submitit (SLURM, local) and Ray launchers, with each job asking for the GPUs its own hardware group needs.

The stock launchers resolve their settings once, in the launching process, against the sweep's primary config:
`gpus_per_node: ${hardware.num_gpus}` gives every job of `hardware=cuda,tp` the same number. These subclasses
compose each job's config (the stock launchers do it too, to run the job) and ask for what that job uses, unless
the launcher config sets a number. Everything else is the stock plugins'.

Each launcher also notes the jobs whose status came back not ok (runner/sweep_outcome.py), so that the command
exits 1 when a job failed on another machine. Without the plugins (`pip install -e '.[cluster]'`), the launchers here
say so when a sweep selects them.
"""

from __future__ import annotations

import logging
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, filter_overrides, setup_globals
from hydra.plugins.launcher import Launcher
from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger(__name__)

# a local Ray cluster started for the sweep: jobs pass only small results through the object store (the stock
# plugin's figure, which also suits CI), and the dashboard would cost seconds and memory
LOCAL_RAY = {"object_store_memory": 75 * 2**20, "include_dashboard": False}


def _missing(class_name: str, option: str, package: str) -> type[Launcher]:
    """A stand-in that Hydra registers under the real launcher's name, and that says what to install."""

    def refuse(self, *_: Any, **__: Any) -> None:
        raise ImportError(f"hydra/launcher={option} needs {package}: pip install -e '.[cluster]'")

    methods = {"__init__": refuse, "setup": refuse, "launch": refuse}  # concrete, or Hydra would not register it
    return type(class_name, (Launcher,), {**methods, "__module__": __name__})


def job_config(launcher: Any, overrides: Sequence[str]) -> DictConfig:
    return launcher.hydra_context.config_loader.load_sweep_config(launcher.config, list(overrides))


def job_hardware(config: DictConfig):
    return OmegaConf.to_object(config.hardware)  # a runner.config.hardware.HardwareConfig


def describe(idx: int, overrides: Sequence[str]) -> str:
    return f"job #{idx} ({' '.join(filter_overrides(overrides))})"


def plan(launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int, request: Callable) -> list:
    """(index, overrides, config, request) of every job, before anything is submitted: a job the cluster cannot
    run stops the sweep here with the reason, instead of after the others started (or waiting forever on Ray)."""
    from runner.errors import ConfigError

    planned = []
    try:
        for offset, overrides in enumerate(job_overrides):
            idx = initial_job_idx + offset
            config = job_config(launcher, overrides)
            resources = request(job_hardware(config), describe(idx, overrides))
            log.info("\t#%d : %s (asks for %s)", idx, " ".join(filter_overrides(overrides)), resources)
            planned.append((idx, overrides, config, resources))
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    return planned


try:
    from hydra_plugins.hydra_submitit_launcher import submitit_launcher
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
except ImportError:
    SlurmLauncher = _missing("SlurmLauncher", "slurm", "hydra-submitit-launcher")
    LocalLauncher = _missing("LocalLauncher", "slurm_local", "hydra-submitit-launcher")
else:

    class _PerJobGpus(submitit_launcher.BaseSubmititLauncher):
        """One submitit job array per GPU count, all submitted before any result is awaited."""

        def _cluster_gpus(self) -> int | None:
            return None  # a SLURM partition's GPUs are not known from here

        def _executor(self, gpus: int):
            import submitit

            # the stock launcher's executor set-up, with this array's GPU count
            params = {**self.params, "gpus_per_node": gpus}
            init = {"folder": params.pop("submitit_folder")}
            if "max_num_timeout" in params:
                init[f"{self._EXECUTOR}_max_num_timeout"] = params.pop("max_num_timeout")
            executor = submitit.AutoExecutor(cluster=self._EXECUTOR, **init)
            shared = set(OmegaConf.structured(BaseQueueConf).keys())
            executor.update_parameters(**{k if k in shared else f"{self._EXECUTOR}_{k}": v for k, v in params.items()})
            return executor

        def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
            from runner.distributed.resources import check_fits, job_gpus
            from runner.sweep_outcome import gather

            assert self.config is not None
            fixed, cluster_gpus = self.params.get("gpus_per_node"), self._cluster_gpus()

            def request(hardware, job: str) -> dict[str, int]:
                gpus = fixed if fixed is not None else job_gpus(hardware, cluster_gpus)
                if cluster_gpus is not None:
                    check_fits(gpus, cluster_gpus, job)
                return {"gpus_per_node": gpus}

            groups: dict[int, list[tuple]] = defaultdict(list)
            jobs_planned = plan(self, job_overrides, initial_job_idx, request)
            for idx, overrides, _, resources in jobs_planned:
                job = (list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}", Singleton.get_state())
                groups[resources["gpus_per_node"]].append(job)
            Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
            submitted = {}
            for gpus, params in groups.items():
                jobs = self._executor(gpus).map_array(self, *zip(*params, strict=True))
                submitted.update({job_params[2]: job for job, job_params in zip(jobs, params, strict=True)})
            # the jobs ran elsewhere: their status comes back here
            return gather(
                [
                    (describe(idx, overrides), overrides, lambda job=submitted[idx]: job.results()[0])
                    for idx, overrides, *_ in sorted(jobs_planned, key=lambda planned: planned[0])
                ]
            )

    class SlurmLauncher(_PerJobGpus, submitit_launcher.SlurmLauncher):
        pass

    class LocalLauncher(_PerJobGpus, submitit_launcher.LocalLauncher):
        def _cluster_gpus(self) -> int | None:
            from runner.devices import visible_gpus

            return visible_gpus()


try:
    from hydra_plugins.hydra_ray_launcher import ray_launcher
except ImportError:
    RayLauncher = _missing("RayLauncher", "ray_cluster", "hydra-ray-launcher")
else:

    class RayLauncher(ray_launcher.RayLauncher):
        """The stock Ray launcher (hydra_ray_launcher._core.launch), with each job's ray.remote resources its own."""

        def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
            import ray
            from hydra_plugins.hydra_ray_launcher._launcher_util import launch_job_on_ray, start_ray

            from runner.distributed.resources import check_fits, job_cpus, job_gpus
            from runner.sweep_outcome import gather

            assert self.config is not None and self.hydra_context is not None and self.task_function is not None
            setup_globals()
            configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
            Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
            init = OmegaConf.to_container(self.ray_cfg.init, resolve=True)
            start_ray(OmegaConf.create(init if init.get("address") else {**LOCAL_RAY, **init}))
            cluster_gpus = int(ray.cluster_resources().get("GPU", 0))
            remote_cfg = OmegaConf.to_container(self.ray_cfg.remote, resolve=True)
            fixed = {k: v for k, v in remote_cfg.items() if v is not None}

            def request(hardware, job: str) -> dict[str, Any]:
                remote = {"num_gpus": job_gpus(hardware, cluster_gpus), **fixed}
                if (cpus := job_cpus(hardware)) is not None:
                    remote.setdefault("num_cpus", cpus)
                check_fits(remote["num_gpus"], cluster_gpus, job)
                return remote

            runs, described = [], []
            for idx, overrides, config, remote in plan(self, job_overrides, initial_job_idx, request):
                described.append((idx, overrides))
                with open_dict(config):
                    config.hydra.job.id = f"job_id_for_{idx}"
                    config.hydra.job.num = idx
                remote_options = OmegaConf.create(remote)
                state = Singleton.get_state()
                runs.append(launch_job_on_ray(self.hydra_context, remote_options, config, self.task_function, state))
            # the jobs ran in Ray workers: their status comes back here
            return gather(
                [
                    (describe(idx, overrides), overrides, lambda run=run: ray.get(run))
                    for (idx, overrides), run in zip(described, runs, strict=True)
                ]
            )
