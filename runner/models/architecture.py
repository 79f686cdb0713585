"""A model preset's architecture as Transformers sees it, without building anything: its config object and the
Auto class its task loads with. Light on purpose: the checks ask these before anything loads."""

from __future__ import annotations

import copy

import transformers
from transformers import AutoConfig, PretrainedConfig

from runner.config.model import ModelConfig, Task
from runner.errors import ConfigError

AUTO_CLASSES = {
    Task.causal_lm: "AutoModelForCausalLM",
    Task.sequence_classification: "AutoModelForSequenceClassification",
    Task.feature_extraction: "AutoModel",
}


def auto_class(task: Task):
    return getattr(transformers, AUTO_CLASSES[task])


def architecture_config(model: ModelConfig) -> PretrainedConfig:
    try:
        return AutoConfig.for_model(model.model_type, **copy.deepcopy(dict(model.architecture)))
    except ValueError as e:
        raise ConfigError(f"model.model_type={model.model_type!r}: {e}") from e
