"""Which attention implementations a model architecture supports, read from its Transformers class without
building it (the class flags `_supports_sdpa`, `_supports_flash_attn`, `_supports_flex_attn`)."""

from __future__ import annotations

import sys

from runner.attention.implementations import EAGER, FLASH_ATTENTION, FLEX, SDPA, uses_flash_attention
from runner.config.model import ModelConfig
from runner.models.architecture import architecture_config, auto_class


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
        flagged = getattr(cls, "_supports_flash_attn", False) or getattr(cls, "_supports_flash_attn_2", False)
        return bool(flagged) and _class_table_accepts(cls, implementation)
    return False


def _class_table_accepts(cls: type, implementation: str) -> bool:
    """Some models (falcon in Transformers 5.17) pick their attention module from a table keyed by
    implementation name, with FlashAttention-2 only: fa3/fa4 would fail at load with a bare KeyError. Newer
    versions route every flash variant to that one class (`is_flash_attention_requested`)."""
    module = sys.modules.get(cls.__module__)
    tables = [v for k, v in vars(module).items() if k.endswith("ATTENTION_CLASSES") and isinstance(v, dict)]
    if not tables or hasattr(module, "is_flash_attention_requested"):
        return True
    return all(implementation in table for table in tables)


def supported_options(cls: type) -> list[str]:
    names = ["eager"]
    if supports(cls, SDPA):
        names.append("sdpa")
    if supports(cls, FLEX):
        names.append("flex")
    names += [fa.option for impl, fa in FLASH_ATTENTION.items() if supports(cls, impl)]
    return names
