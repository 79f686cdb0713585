"""Tokenizers come with checkpoints only: random-weight presets have none."""

from __future__ import annotations

from transformers import AutoTokenizer

from runner.config.model import ModelConfig
from runner.errors import ConfigError
from runner.models.source import resolve_weights


def load_tokenizer(model: ModelConfig):
    source = resolve_weights(model)
    if source.kind != "pretrained":
        raise ConfigError(
            f"scenario.text needs a tokenizer, and model={model.name} has random weights with none; "
            "drop scenario.text (random token ids are used) or give model.path=DIR of a checkpoint"
        )
    return AutoTokenizer.from_pretrained(source.location)
