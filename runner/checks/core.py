"""Checks every run needs: known plugins, sane scenario numbers, a device that exists."""

from __future__ import annotations

from runner.backends.base import BACKENDS
from runner.checks.base import check, raise_all
from runner.config.model import Task
from runner.config.run import RunConfig
from runner.devices import resolve_device
from runner.errors import ConfigError
from runner.scenarios import SCENARIOS
from runner.stages import STAGES


@check
def plugins_exist(cfg: RunConfig) -> None:
    for name in cfg.pipeline.stages:
        STAGES.get(name)
    SCENARIOS.get(cfg.scenario.name)
    import runner.backends.registry  # noqa: F401  (fills BACKENDS)

    BACKENDS.get(cfg.backend.name)


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
    if s.name == "generate" and s.new_tokens < 1:
        problems.append(f"scenario.new_tokens={s.new_tokens} must be at least 1")
    raise_all(problems)


@check
def generate_needs_a_decoder(cfg: RunConfig) -> None:
    if cfg.scenario.name == "generate" and cfg.model.task != Task.causal_lm:
        raise ConfigError(
            f"scenario=generate needs a causal_lm model; model={cfg.model.name} is {cfg.model.task.value}. "
            "Use scenario=forward"
        )


@check
def device_exists(cfg: RunConfig) -> None:
    resolve_device(cfg.hardware)
