"""A stage: one job, `run(ctx) -> ctx`, and `reverse(ctx)` where it changes the model (the pipeline calls it)."""

from __future__ import annotations

from typing import ClassVar

from runner.context import RunContext
from runner.registry import Registry


class Stage:
    name: ClassVar[str]
    # the stage runs on the model without conversions: the pipeline reverses every earlier stage before it
    needs_unconverted_model: ClassVar[bool] = False
    # the stage runs the reference model (`ctx.reference()`): loaded once for consecutive such stages, and freed
    # by the pipeline before a stage that does not use it, so that it never sits in memory during measured calls
    uses_reference: ClassVar[bool] = False

    def run(self, ctx: RunContext) -> RunContext:
        raise NotImplementedError

    def reverse(self, ctx: RunContext) -> None:
        """Undo what `run` did to the model; the default stage changed nothing."""


STAGES: Registry[type[Stage]] = Registry("stage")


def stage(name: str):
    def add(cls: type[Stage]) -> type[Stage]:
        cls.name = name
        return STAGES.register(name)(cls)

    return add
