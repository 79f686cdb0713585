"""Checks of the composed `hydra` node, before Hydra instantiates anything from it: only the runner's own
launchers, sweepers and callbacks may be named (a `_target_` is any importable callable, so a command line or an
edited `.hydra/config.yaml` could otherwise run any function), and logging configs build only `logging` classes."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from runner.errors import ConfigError

CONF = Path(__file__).resolve().parents[2] / "conf"
# Hydra's own in-process launcher and sweeper, which Hydra's defaults name
HYDRA_BASICS = (
    "hydra._internal.core_plugins.basic_launcher.BasicLauncher",
    "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
)
LOGGING_FACTORY_KEYS = ("()",)  # logging.config.dictConfig calls whatever `()` names


def _targets(node: Any, path: str = ""):
    """(dotted path, value) of every `_target_` in a plain container."""
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{path}.{key}" if path else str(key)
            if key == "_target_":
                yield where, value
            else:
                yield from _targets(value, where)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _targets(value, f"{path}[{index}]")


@functools.cache
def runner_targets() -> frozenset[str]:
    """The `_target_`s the runner's own configs name (conf/config.yaml's callbacks, conf/hydra/**), and Hydra's
    basic launcher and sweeper: adding a launcher or callback to conf/ is what allows it."""
    found = set(HYDRA_BASICS)
    for path in [CONF / "config.yaml", *sorted((CONF / "hydra").rglob("*.yaml"))]:
        found.update(str(value) for _, value in _targets(OmegaConf.to_container(OmegaConf.load(path))))
    return frozenset(found)


def plugin_options() -> frozenset[str]:
    """The launchers and sweepers that installed Hydra plugins offer as options of `hydra/launcher` and
    `hydra/sweeper` (submitit_local, ray, ...): classes chosen by option name, never a callable a config names."""
    from hydra.core.config_store import ConfigStore

    repo = ConfigStore.instance().repo.get("hydra", {})
    found = set()
    for group in ("launcher", "sweeper"):
        for entry in (repo.get(group) or {}).values():
            node = getattr(entry, "node", None)
            target = node.get("_target_") if isinstance(node, DictConfig) else None
            if target:
                found.add(str(target))
    return frozenset(found)


def allowed_targets() -> frozenset[str]:
    return runner_targets() | plugin_options()


def _logging_problems(name: str, node: Any, path: str = "") -> list[str]:
    problems = []
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{path}.{key}" if path else str(key)
            if key in LOGGING_FACTORY_KEYS:
                problems.append(f"hydra.{name}.{where}: logging factories ('()') are not allowed in a runner config")
            elif key == "class" and not str(value).startswith("logging."):
                problems.append(f"hydra.{name}.{where}={value!r}: only logging.* handler classes are allowed")
            else:
                problems += _logging_problems(name, value, where)
    return problems


def check_hydra_node(hydra: DictConfig) -> None:
    """Raise ConfigError if the composed `hydra` node names code the runner does not ship."""
    node = OmegaConf.to_container(hydra, resolve=False)  # an interpolated target is refused, not resolved
    allowed = allowed_targets()
    problems = [
        f"hydra.{where}={value!r} is not one of the runner's launchers, sweepers or callbacks; allowed: "
        + ", ".join(sorted(allowed))
        for where, value in _targets(node)
        if value not in allowed
    ]
    for name in ("job_logging", "hydra_logging"):
        problems += _logging_problems(name, node.get(name) or {})
    if problems:
        raise ConfigError("; ".join(problems))
