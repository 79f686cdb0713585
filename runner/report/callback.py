"""A Hydra callback: at the end of every multirun, the sweep's report is written."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from runner.report.build import write_report

log = logging.getLogger(__name__)


class SweepReport(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        report = config.get("report") or {}
        try:
            summary = write_report(sweep_dir, list(report.get("baseline") or []), bool(report.get("plots", True)))
        except Exception as error:  # the jobs' records are safe; a broken report must not hide them
            log.error("could not write the sweep report (rerun `python -m runner.report %s`): %s", sweep_dir, error)
            return
        print(f"sweep report: {sweep_dir}/summary.md ({len(summary['rows'])} jobs, {summary['failed']} failed)")
