"""What an exported ONNX graph takes and returns, written beside it as graph.json so that a cached export is
used without rebuilding the PyTorch model.

Shapes are templates: a symbolic axis is one of DIMS, every other axis is the size the model fixes (hidden
size, vocabulary, KV heads). A decoder's graph carries its KV cache as flat `past.<layer>.key|value` inputs and
`present.<layer>.key|value` outputs."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

GRAPH_FILE = "model.onnx"
META_FILE = "graph.json"
# batch rows; new tokens in this call; tokens already in the KV cache; past + new (the mask's length);
# positions whose logits are computed
DIMS = ("batch", "sequence", "past_sequence", "total_sequence", "kept")
DTYPES = {"float32": torch.float32, "float16": torch.float16}  # model.dtype -> the graph's floating type


@dataclass
class Graph:
    inputs: dict[str, list]  # name -> shape template
    outputs: dict[str, list]
    dtype: str  # of floating inputs and outputs
    layers: int = 0  # KV-cache layers; 0 for a graph without a cache
    main_output: str = "logits"  # logits or last_hidden_state
    export: dict = field(default_factory=dict)  # how and when it was exported

    @property
    def with_cache(self) -> bool:
        return self.layers > 0

    @property
    def past_names(self) -> list[str]:
        return [f"past.{i}.{kv}" for i in range(self.layers) for kv in ("key", "value")]

    @property
    def present_names(self) -> list[str]:
        return [f"present.{i}.{kv}" for i in range(self.layers) for kv in ("key", "value")]

    def shape(self, template: list, **sizes: int) -> tuple[int, ...]:
        return tuple(sizes[d] if isinstance(d, str) else d for d in template)

    def empty_past(self, batch: int, device: torch.device) -> dict[str, torch.Tensor]:
        """A KV cache holding no tokens yet: the prefill's past."""
        dtype = DTYPES[self.dtype]
        return {
            name: torch.empty(self.shape(self.inputs[name], batch=batch, past_sequence=0), dtype=dtype, device=device)
            for name in self.past_names
        }

    def save(self, folder: Path) -> None:
        (folder / META_FILE).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, folder: Path) -> Graph:
        return cls(**json.loads((folder / META_FILE).read_text()))
