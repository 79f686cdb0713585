"""Turn a composed config (Hydra's DictConfig, or a plain dict from a saved run) into a typed RunConfig,
validated once at the door. Nothing after this reads a raw DictConfig."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from runner.config import SCHEMAS
from runner.config.run import RunConfig
from runner.errors import ConfigError

# backend.name -> its schema, by the name each schema defaults to; each option in conf/backend/ extends one of these
BACKEND_SCHEMAS: dict[str, type] = {schema.name: schema for schema in SCHEMAS["backend"].values()}


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
    if name not in BACKEND_SCHEMAS:
        raise ConfigError(f"backend.name={name!r} is unknown; valid choices: {', '.join(sorted(BACKEND_SCHEMAS))}")
    try:
        run = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(RunConfig), container, {"backend": None}))
        run.backend = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(BACKEND_SCHEMAS[name]), backend))
    except OmegaConfBaseException as e:
        raise ConfigError(str(e).splitlines()[0] + f" (key: {getattr(e, 'full_key', '?')})") from e
    return validate(run)
