"""Schema of the `scenario` group: what is measured, and what each scenario declares it supports (read by
validation without importing the scenario, runner/scenarios/<name>.py)."""

from dataclasses import dataclass
from enum import Enum

from runner.config.model import Task


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


@dataclass(frozen=True)
class ScenarioSupport:
    """A scenario's declaration: the model tasks it runs (None: every task) and whether it reads new_tokens."""

    tasks: tuple[Task, ...] | None = None
    generates: bool = False  # scenario.new_tokens is its length, at least 1


# one entry per scenario plugin (runner/scenarios/<name>.py; tests/test_plugins.py holds them to it)
SCENARIO_SUPPORT: dict[str, ScenarioSupport] = {
    "forward": ScenarioSupport(),
    "generate": ScenarioSupport(tasks=(Task.causal_lm,), generates=True),
}
