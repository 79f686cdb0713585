"""Checks of the model group before anything is imported or built: a package the presets name, an architecture
whose keys the transformers config class has and whose sizes are positive, inputs within the model's positions."""

from __future__ import annotations

import copy
import functools
import inspect
import os
import re
from pathlib import Path

from omegaconf import OmegaConf
from transformers import CONFIG_MAPPING

from runner.checks.base import check
from runner.config.run import RunConfig
from runner.errors import ConfigError, did_you_mean
from runner.models.architecture import architecture_config

MODEL_PRESETS = Path(__file__).resolve().parents[2] / "conf" / "model"
ALLOWED_PACKAGES_ENV = "RUNNER_ALLOWED_PACKAGES"  # comma-separated packages allowed beyond the presets'
# architecture keys that count or size something: an integer below 1 builds no model (or a broken one)
SIZE_KEY = re.compile(r"(size|dim|num_|n_|heads|layers|positions|vocab|experts)")


@functools.cache
def preset_packages() -> frozenset[str]:
    found = (OmegaConf.load(path).get("package") for path in MODEL_PRESETS.glob("*.yaml"))
    return frozenset(str(p) for p in found if p)


def allowed_packages() -> set[str]:
    extra = {p.strip() for p in os.environ.get(ALLOWED_PACKAGES_ENV, "").split(",") if p.strip()}
    return set(preset_packages()) | extra


@check(values=True)
def package_is_allowed(cfg: RunConfig) -> None:
    """model.package is imported to find its checkpoint: only the ones the presets name, or explicitly allowed."""
    package = cfg.model.package
    if package is not None and package not in allowed_packages():
        raise ConfigError(
            f"model.package={package!r} is not a package the model presets name "
            f"({', '.join(sorted(preset_packages())) or 'none'}); importing it would run its code. To use it, "
            f"allow it: export {ALLOWED_PACKAGES_ENV}={package}"
        )


@functools.cache
def known_attributes(config_class: type) -> frozenset[str]:
    """What a transformers config class takes: its constructor's arguments, its fields, aliases and properties."""
    known = set(config_class().to_dict())
    for cls in config_class.__mro__:
        if cls is object:
            continue
        known |= set(inspect.signature(cls.__init__).parameters) - {"self", "args", "kwargs"}
        known |= {name for name, value in vars(cls).items() if isinstance(value, property) and name[0] != "_"}
    return frozenset(known | set(getattr(config_class, "attribute_map", {})))


@check(values=True)
def architecture_keys(cfg: RunConfig) -> None:
    model = cfg.model
    if model.model_type not in CONFIG_MAPPING:
        hint = did_you_mean(model.model_type, CONFIG_MAPPING)
        raise ConfigError(f"model.model_type={model.model_type!r} is not a transformers model type.{hint}")
    config_class = CONFIG_MAPPING[model.model_type]
    known = known_attributes(config_class)
    problems = [
        f"model.architecture.{key}={value} must be at least 1"
        for key, value in model.architecture.items()
        if isinstance(value, int) and not isinstance(value, bool) and value < 1 and SIZE_KEY.search(key)
    ]
    if problems:
        raise ConfigError("; ".join(problems))
    try:
        kept = set(config_class(**copy.deepcopy(dict(model.architecture))).to_dict())
    except Exception as e:  # the config class's own validation: a ValueError, or a strict-dataclass error
        raise ConfigError(f"model.architecture of model={model.name} ({config_class.__name__}): {e}") from e
    for key in model.architecture:
        # a key the class does not declare but consumes (legacy rope_theta -> rope_parameters) is understood;
        # one it merely keeps as an extra attribute is a typo nothing reads
        if key not in known and key in kept:
            hint = did_you_mean(key, known, as_text=lambda close: f"model.architecture.{close}")
            problems.append(f"model.architecture.{key} is not a {config_class.__name__} setting.{hint}")
    if problems:
        raise ConfigError("; ".join(problems))


@check
def inputs_fit_the_positions(cfg: RunConfig) -> None:
    """A learned position table (BERT, OPT, GPT-2) has no row past max_position_embeddings: longer inputs crash.
    Rotary (Llama, Falcon, Mistral) and ALiBi models compute positions and run longer inputs (the seed measured
    Falcon at 4096 tokens), so for them the number is the trained length, not a limit."""
    config = architecture_config(cfg.model)
    if getattr(config, "rope_parameters", None) is not None or getattr(config, "alibi", False):
        return
    positions = getattr(config, "max_position_embeddings", None)
    s = cfg.scenario
    length = s.sequence_length + (s.new_tokens if s.name == "generate" else 0)
    if isinstance(positions, int) and length > positions:
        what = f"scenario.sequence_length={s.sequence_length}"
        if s.name == "generate":
            what += f" + scenario.new_tokens={s.new_tokens} = {length} tokens"
        raise ConfigError(
            f"{what} is more than model={cfg.model.name}'s {positions} positions "
            f"(model.architecture.max_position_embeddings): use at most {positions} tokens"
        )
