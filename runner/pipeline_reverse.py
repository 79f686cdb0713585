"""Undo the model changes of completed stages, once, newest first."""

from __future__ import annotations

from runner.context import RunContext


def reverse_all(ctx: RunContext) -> None:
    if ctx.reversed:
        return
    for done in reversed(ctx.completed):
        done.reverse(ctx)
    ctx.reversed = True
