"""Turn a composed config (Hydra's DictConfig, or a plain dict from a saved run) into a typed RunConfig,
validated once at the door. Nothing after this reads a raw DictConfig."""

from __future__ import annotations

import json
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from runner.config.backend import BACKEND_CONFIGS, backend_schemas
from runner.config.run import RunConfig
from runner.errors import ConfigError


def to_container(cfg: DictConfig | dict) -> dict[str, Any]:
    if isinstance(cfg, DictConfig):
        container = OmegaConf.to_container(cfg, resolve=True)
    else:
        container = dict(cfg)
    container.pop("hydra", None)
    return container


def to_run_config(cfg: DictConfig | dict) -> RunConfig:
    from runner.checks import validate

    container = to_container(cfg)
    backend = dict(container.pop("backend", None) or {"name": "pytorch"})
    name = backend.get("name", "pytorch")
    backend_schemas()  # every backend folder's schema registered
    if name not in BACKEND_CONFIGS:
        raise ConfigError(f"backend.name={name!r} is unknown; valid choices: {', '.join(BACKEND_CONFIGS.names())}")
    try:
        run = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(RunConfig), container, {"backend": None}))
        run.backend = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(BACKEND_CONFIGS.get(name)), backend))
    except OmegaConfBaseException as e:
        raise ConfigError(str(e).splitlines()[0] + f" (key: {getattr(e, 'full_key', '?')})") from e
    return validate(run)


# A single run is typed and checked by the command line (runner/command_line.py, before its folder is claimed);
# the job Hydra then starts in this process takes that typed config instead of checking it again.
_checked: dict[str, RunConfig] = {}


def _key(container: dict[str, Any]) -> str:
    return json.dumps(container, sort_keys=True, default=str)


def check_for_the_job(cfg: DictConfig | dict) -> RunConfig:
    """`to_run_config`, keeping the result for the job that runs this same config next (`typed_at_the_door`)."""
    container = to_container(cfg)
    run = to_run_config(container)
    _checked.clear()
    _checked[_key(container)] = run
    return run


def typed_at_the_door(container: dict[str, Any]) -> RunConfig:
    """The job's typed config: the command line's, when it checked this very config, else typed and checked now."""
    run = _checked.pop(_key(container), None)
    return run if run is not None else to_run_config(container)
