"""Stage plugins, found by name. Every module in this package is imported, so a new stage is one new file."""

from runner.discovery import import_all
from runner.stages.base import STAGES, Stage, stage

import_all(__name__)

__all__ = ["STAGES", "Stage", "stage"]
