"""Checks every run needs: known plugins, sane scenario numbers, a device that exists."""

from __future__ import annotations

from runner.checks.base import check, raise_all
from runner.config.backend import BACKEND_CONFIGS
from runner.config.run import RunConfig
from runner.config.scenario import SCENARIO_SUPPORT, ScenarioSupport
from runner.devices import resolve_device
from runner.discovery import plugin_names
from runner.errors import ConfigError, did_you_mean


def _known(kind: str, name: str, names: list[str]) -> None:
    if name not in names:
        hint = did_you_mean(name, names)
        raise ConfigError(f"unknown {kind} {name!r}.{hint} Valid choices: {', '.join(names)}")


def _support(scenario: str) -> ScenarioSupport:
    return SCENARIO_SUPPORT.get(scenario, ScenarioSupport())  # an unknown name is plugins_exist's to report


@check
def plugins_exist(cfg: RunConfig) -> None:
    """By the plugins' module names (runner/stages/<name>.py, runner/scenarios/<name>.py): nothing is imported."""
    for name in cfg.pipeline.stages:
        _known("stage", name, plugin_names("runner.stages"))
    _known("scenario", cfg.scenario.name, plugin_names("runner.scenarios"))
    BACKEND_CONFIGS.get(cfg.backend.name)


@check(values=True)
def scenario_numbers(cfg: RunConfig) -> None:
    s = cfg.scenario
    problems = [
        f"scenario.{key}={getattr(s, key)} must be at least 1"
        for key in ("batch_size", "sequence_length", "iterations")
        if getattr(s, key) < 1
    ]
    if s.warmup_runs < 0:
        problems.append(f"scenario.warmup_runs={s.warmup_runs} must be 0 or more")
    if not 0 <= s.padding_ratio < 1:
        problems.append(f"scenario.padding_ratio={s.padding_ratio} must be in [0, 1)")
    if _support(s.name).generates and s.new_tokens < 1:
        problems.append(f"scenario.new_tokens={s.new_tokens} must be at least 1")
    raise_all(problems)


@check
def scenario_supports_the_model(cfg: RunConfig) -> None:
    """What the scenario declares (runner/config/scenario.py SCENARIO_SUPPORT): generate needs a causal LM."""
    tasks = _support(cfg.scenario.name).tasks
    if tasks is not None and cfg.model.task not in tasks:
        raise ConfigError(
            f"scenario={cfg.scenario.name} needs a {' or '.join(t.value for t in tasks)} model; "
            f"model={cfg.model.name} is {cfg.model.task.value}. Use scenario=forward"
        )


@check
def device_exists(cfg: RunConfig) -> None:
    resolve_device(cfg.hardware)
