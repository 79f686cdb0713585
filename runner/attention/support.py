"""Which attention implementations a model architecture supports, read from its Transformers class without
building it (the class flags `_supports_sdpa`, `_supports_flash_attn`, `_supports_flex_attn`)."""

from __future__ import annotations

from runner.attention.implementations import EAGER, FLASH_ATTENTION, FLEX, SDPA, uses_flash_attention
from runner.config.model import ModelConfig
from runner.models.build import architecture_config, auto_class


def model_class(model: ModelConfig) -> type | None:
    """The class `from_pretrained` will build for this preset, or None when it cannot be told offline."""
    if model.trust_remote_code:
        return None  # remote code decides its own class
    try:
        config = architecture_config(model)
        return auto_class(model.task)._model_mapping[type(config)]
    except Exception:  # an unknown pairing fails at load with Transformers' own message
        return None


def supports(cls: type, implementation: str) -> bool:
    if implementation == EAGER:
        return True
    if implementation == SDPA:
        return bool(getattr(cls, "_supports_sdpa", False))
    if implementation == FLEX:
        return bool(getattr(cls, "_supports_flex_attn", False))
    if uses_flash_attention(implementation):
        return bool(getattr(cls, "_supports_flash_attn", False) or getattr(cls, "_supports_flash_attn_2", False))
    return False


def supported_options(cls: type) -> list[str]:
    names = ["eager"]
    if supports(cls, SDPA):
        names.append("sdpa")
    if supports(cls, FLEX):
        names.append("flex")
    names += [fa.option for impl, fa in FLASH_ATTENTION.items() if supports(cls, impl)]
    return names
