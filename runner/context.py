"""What the stages share while a run executes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from runner.config.run import RunConfig
from runner.record import Record


@dataclass
class RunContext:
    cfg: RunConfig
    run_dir: Path
    device: torch.device  # where inputs go (the first device of the model)
    backend: Any = None  # a runner.backends.base.Backend, set by the load stage
    inputs: dict[str, Any] | None = None  # the measured batch, built once
    # results.json as it fills: each section is assigned, as its dataclass, by the one stage that owns it
    record: Record = field(default_factory=Record)
    completed: list = field(default_factory=list)  # stages that finished, in order
    reversed: bool = False  # set once every stage's changes to the model have been undone
