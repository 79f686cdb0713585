"""A Hydra callback: at the end of every multirun, the sweep's report is written and its failed jobs noted.

The callback runs in the process that launched the sweep, whatever the launcher (in-process, submitit, Ray), so
it is where the CLI learns which jobs failed: the jobs themselves may have run on other machines."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from runner.report.build import write_report
from runner.report.collect import collect_jobs

log = logging.getLogger(__name__)


class SweepReport(Callback):
    failed: ClassVar[list[str]] = []  # job folders of the last multirun whose record is not "ok" (or missing)
    sweep_dir: ClassVar[Path | None] = None

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        jobs, _ = collect_jobs(sweep_dir)
        SweepReport.sweep_dir = sweep_dir
        SweepReport.failed = [job.row["job"] for job in jobs if job.row["status"] != "ok"]
        report = config.get("report") or {}
        try:
            summary = write_report(sweep_dir, list(report.get("baseline") or []), bool(report.get("plots", True)))
        except Exception as error:  # the jobs' records are safe; a broken report must not hide them
            log.error("could not write the sweep report (rerun `python -m runner.report %s`): %s", sweep_dir, error)
            return
        print(f"sweep report: {sweep_dir}/summary.md ({len(summary['rows'])} jobs, {summary['failed']} failed)")
