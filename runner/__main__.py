"""`python -m runner [overrides]`: compose the config with Hydra, run it, print and record the results."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from runner import sweep_outcome
from runner.command_line import CONFIG_NAME, CONFIG_PATH, prepare
from runner.config import register_configs
from runner.config.load import to_container
from runner.errors import ConfigError
from runner.interrupts import exit_status, how, raise_on_sigterm
from runner.progress import describe_job
from runner.record import Record
from runner.report.callback import report_interrupted_sweep
from runner.results import finished_ok

log = logging.getLogger("runner")


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name=CONFIG_NAME)
def main(cfg: DictConfig) -> str:
    """One job; returns its status, which a cluster launcher's JobReturn carries back to the launching process."""
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    if hydra_cfg.mode != RunMode.MULTIRUN:
        record = run_and_report(cfg, hydra_cfg, run_dir, multirun=False)
        if not record.ok:
            print(f"error: {record.error.message}", file=sys.stderr)
            sys.exit(2 if record.error.type == "ConfigError" else 1)
        return record.status
    try:
        status = sweep_job(cfg, hydra_cfg, run_dir)
    except Exception:  # a bug of the runner's own, outside the job's record: the other jobs still run
        log.exception("job %s crashed", run_dir)
        status = "crashed"
    sweep_outcome.note(str(run_dir), status)  # in-process jobs; a cluster launcher notes its own from this return
    return status


def sweep_job(cfg: DictConfig, hydra_cfg, run_dir: Path) -> str:
    overrides = list(hydra_cfg.overrides.task)
    label = describe_job(hydra_cfg.job.num, hydra_cfg.sweep.dir)
    if cfg.get("resume"):
        done, why_not = finished_ok(run_dir, to_container(cfg))
        if done:
            log.info("%s: %s already has an ok result: skipped (resume=true)", label, run_dir)
            return "skipped"
        log.info("%s: %s runs again (resume=true): %s", label, run_dir, why_not)
    log.info("%s: %s", label, " ".join(overrides))
    return run_and_report(cfg, hydra_cfg, run_dir, multirun=True, label=label).status


def run_and_report(cfg: DictConfig, hydra_cfg, run_dir: Path, multirun: bool, label: str = "") -> Record:
    # the job layer imports Transformers' modeling code and every plugin (about 4 s on a 2-core CPU): only once a
    # command line has passed its checks, so that a typo is answered in half the time
    from runner.app import report, run_job

    log_file = run_dir / f"{hydra_cfg.job.name}.log"
    overrides = list(hydra_cfg.overrides.task)
    record = run_job(cfg, run_dir, overrides, multirun=multirun, label=label, log_file=log_file)
    report(record)
    return record


def cli() -> None:
    register_configs()
    try:
        sys.argv[1:] = prepare(sys.argv[1:])
    except ConfigError as error:  # a config error of any kind, Hydra's own included: exit 2, no traceback
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    raise_on_sigterm()
    try:
        main()
    except KeyboardInterrupt as interrupt:  # Ctrl-C or SIGTERM: the running job's record already says so
        written = report_interrupted_sweep()
        done = f"; report of the jobs with records: {written}; resume=true runs the rest" if written else ""
        print(f"error: interrupted ({how(interrupt)}){done}", file=sys.stderr)
        sys.exit(exit_status(interrupt))
    failed = sweep_outcome.failed()  # this sweep's jobs, whichever launcher ran them
    if failed:
        print(f"{len(failed)} job(s) failed: {', '.join(failed)}; reasons in the sweep's summary.md", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    cli()
