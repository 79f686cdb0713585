"""Schema of the `scenario` group: what is measured."""

from dataclasses import dataclass
from enum import Enum


class PaddingSide(str, Enum):
    left = "left"
    right = "right"


@dataclass
class ScenarioConfig:
    name: str = "forward"
    batch_size: int = 1
    sequence_length: int = 128
    new_tokens: int = 32  # generate: exactly this many tokens per row
    warmup_runs: int = 2  # not measured
    iterations: int = 10  # measured calls
    padding_ratio: float = 0.0  # share of each row that is padding, 0 <= r < 1
    padding_side: PaddingSide = PaddingSide.right
    text: str | None = None  # with a tokenizer: this text instead of random token ids
