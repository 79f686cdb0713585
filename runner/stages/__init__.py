"""Stage plugins, found by name. Importing this package registers every stage module in it."""

from runner.stages import compare, convert, infer, load, reverse, save, warmup  # noqa: F401
from runner.stages.base import STAGES, Stage, stage

__all__ = ["STAGES", "Stage", "stage"]
