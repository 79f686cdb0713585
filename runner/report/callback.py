"""A Hydra callback, run in the process that launched the sweep: the sweep's outcome is tracked from its start,
and at its end the report is written."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from runner import sweep_outcome
from runner.report.build import write_report
from runner.report.collect import collect_jobs

log = logging.getLogger(__name__)


class SweepReport(Callback):
    current: tuple[Path, Any] | None = None  # the sweep this process launched: its folder and report options

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_outcome.begin()
        SweepReport.current = (Path(config.hydra.sweep.dir), config.get("report") or {})

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        SweepReport.current = None
        write_sweep_report(Path(config.hydra.sweep.dir), config.get("report") or {})


def report_interrupted_sweep() -> str | None:
    """After Ctrl-C or SIGTERM: the report of the jobs that have records, when a sweep was running; what was
    written, in words, or None."""
    if SweepReport.current is None:
        return None
    sweep_dir, report = SweepReport.current
    SweepReport.current = None
    return write_sweep_report(sweep_dir, report)


def write_sweep_report(sweep_dir: Path, report: Any) -> str | None:
    """summary.csv, summary.md and charts for the records in `sweep_dir`; never raises: the records stay safe."""
    rerun = f"rerun `python -m runner.report {sweep_dir}`"
    try:
        collected = collect_jobs(sweep_dir)
    except Exception as error:
        if not sweep_outcome.STATUS:  # the exit status must not say "all ok" for want of reading the records
            sweep_outcome.note(f"{sweep_dir} (records unreadable: {error})", "unknown")
        log.error("could not read the sweep's records (%s): %s", rerun, error)
        return None
    if not sweep_outcome.STATUS:  # a launcher that reports nothing to this process: the records say
        sweep_outcome.from_jobs(collected[0])
    baseline, plots = list(report.get("baseline") or []), bool(report.get("plots", True))
    try:
        summary = write_report(sweep_dir, baseline, plots, collected=collected)
    except Exception as error:  # the jobs' records are safe; a broken report must not hide them
        log.error("could not write the sweep report (%s): %s", rerun, error)
        return None
    written = f"{sweep_dir}/summary.md ({len(summary['rows'])} jobs, {summary['failed']} failed)"
    print(f"sweep report: {written}")
    return written
