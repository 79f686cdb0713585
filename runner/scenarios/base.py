"""A scenario runs one unit of work (`run_once`) for warmup, and measures repeated calls (`measure`)."""

from __future__ import annotations

from typing import Any, ClassVar

from runner.context import RunContext
from runner.progress import steps
from runner.registry import Registry


class Scenario:
    name: ClassVar[str]

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.backend = ctx.backend
        self.scenario = ctx.cfg.scenario

    def run_once(self) -> Any:
        raise NotImplementedError

    def measure(self) -> dict[str, Any]:
        """Measured calls; returns the `measurements` section of the record."""
        raise NotImplementedError

    def warmup(self) -> None:
        with self.backend.inference_context():
            for _ in steps(range(self.scenario.warmup_runs), "warmup"):
                self.run_once()
        self.backend.clock().synchronize()


SCENARIOS: Registry[type[Scenario]] = Registry("scenario")
