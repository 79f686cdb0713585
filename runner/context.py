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
    reference_backend: Any = None  # the reference model, once a stage asked for it (`reference`)

    def reference(self) -> Any:
        """The reference model (eager, unquantized, unconverted PyTorch, same dtype: runner/agreement.py), loaded on
        the first call and shared by every stage of the job that compares against it (compare, quality); the
        pipeline frees it after the last of them (`release_reference`)."""
        if self.reference_backend is None:
            from runner.agreement import reference_config
            from runner.backends.pytorch.backend import PyTorchBackend

            backend = PyTorchBackend(
                RunContext(cfg=reference_config(self.cfg), run_dir=self.run_dir, device=self.device)
            )
            backend.load()
            self.reference_backend = backend
        return self.reference_backend

    def release_reference(self) -> None:
        if self.reference_backend is not None:
            backend, self.reference_backend = self.reference_backend, None
            backend.unload()
