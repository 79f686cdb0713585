"""`python -m runner [overrides]`: compose the config with Hydra, run it, print and record the results."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from runner.app import report
from runner.config import register_configs
from runner.isolation import run_job
from runner.overrides import check_overrides
from runner.progress import describe_job
from runner.report.callback import SweepReport
from runner.results import finished_ok

log = logging.getLogger("runner")


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    overrides = list(hydra_cfg.overrides.task)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    label = describe_job(hydra_cfg.job.num, hydra_cfg.sweep.dir) if multirun else ""
    if multirun and cfg.get("resume") and finished_ok(run_dir, overrides):
        log.info("%s: %s already has an ok result: skipped (resume=true)", label, run_dir)
        return
    if multirun:
        log.info("%s: %s", label, " ".join(overrides))
    log_file = run_dir / f"{hydra_cfg.job.name}.log"
    record = run_job(cfg, run_dir, overrides, multirun=multirun, label=label, log_file=log_file)
    report(record)
    if record["status"] != "ok" and not multirun:  # a sweep's failures are counted at its end (SweepReport)
        print(f"error: {record['error']['message']}", file=sys.stderr)
        sys.exit(2 if record["error"]["type"] == "ConfigError" else 1)


def cli() -> None:
    register_configs()
    check_overrides(sys.argv[1:])
    main()
    if SweepReport.failed:  # set in this process whichever launcher ran the jobs
        failed, where = SweepReport.failed, SweepReport.sweep_dir / "summary.md"
        print(f"{len(failed)} job(s) failed ({', '.join(failed)}); reasons: {where}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    cli()
