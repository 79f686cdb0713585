"""The attention conversions for models whose own attention classes Transformers left outside its fused kernels:
one table by model type, asked by the load (which implementation to load with), the checks (which implementations
a conversion supplies, and why one cannot be) and the convert stage. Each module answers for its architecture:
`provides`, `load_as`, `refusal`, `ALWAYS_MASKED`, `why_not`, `convert` (and the result's `reverse`)."""

from __future__ import annotations

import importlib
from types import ModuleType

from runner.config.run import RunConfig

# model type -> the module of its conversion, imported only for a run of that type (the checks ask this table)
CONVERSIONS: dict[str, str] = {"falcon": "runner.convert.falcon_attention", "bloom": "runner.convert.bloom_attention"}


def conversion_for(model_type: str | None) -> ModuleType | None:
    name = CONVERSIONS.get(model_type or "")
    return None if name is None else importlib.import_module(name)


def for_run(cfg: RunConfig) -> tuple[ModuleType, object, type | None] | None:
    """(conversion, Transformers config, model class) for a preset with a conversion run on PyTorch modules."""
    if cfg.model.model_type not in CONVERSIONS or not cfg.backend.runs_torch_modules:
        return None
    conversion = conversion_for(cfg.model.model_type)
    from runner.attention.support import model_class
    from runner.errors import ConfigError
    from runner.models.architecture import architecture_config

    try:
        config = architecture_config(cfg.model)
    except ConfigError:
        return None
    return conversion, config, model_class(cfg.model)


def load_implementation(cfg: RunConfig) -> str:
    """The attn_implementation to load the model with; the convert stage switches to the configured one."""
    found = for_run(cfg)
    if found is None:
        return cfg.attention.implementation
    conversion, config, cls = found
    return conversion.load_as(config, cfg.attention.implementation, cls)


def provides(cfg: RunConfig) -> bool:
    """A conversion supplies the configured implementation that the model class lacks."""
    found = for_run(cfg)
    return found is not None and found[0].provides(found[1], cfg.attention.implementation, found[2])


def refusal(cfg: RunConfig) -> str | None:
    """Why the configured implementation cannot run this architecture even through a conversion, or None."""
    found = for_run(cfg)
    return None if found is None else found[0].refusal(found[1], cfg.attention.implementation)


def always_masked(cfg: RunConfig) -> str | None:
    """Why every attention call of this preset's conversion passes SDPA a float mask (Bloom's ALiBi), or None."""
    found = for_run(cfg)
    return None if found is None else found[0].ALWAYS_MASKED


def convert(model, cfg: RunConfig):
    """Convert a loaded model for the configured attention; None when no conversion applies to it."""
    conversion = conversion_for(getattr(getattr(model, "config", None), "model_type", None))
    if conversion is None or not cfg.backend.runs_torch_modules:
        return None
    if conversion.why_not(model, cfg.attention.implementation):
        return None
    return conversion.convert(model, cfg.attention.implementation)
