"""`python -m runner [overrides]`: compose the config with Hydra, run it, print and record the results."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from runner.app import execute, report
from runner.config import register_configs
from runner.overrides import check_overrides

FAILED_JOBS: list[str] = []


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    record = execute(cfg, run_dir, list(hydra_cfg.overrides.task))
    report(record)
    if record["status"] != "ok":
        if hydra_cfg.mode != RunMode.MULTIRUN:
            print(f"error: {record['error']['message']}", file=sys.stderr)
            sys.exit(2 if record["error"]["type"] == "ConfigError" else 1)
        FAILED_JOBS.append(str(run_dir))


def cli() -> None:
    register_configs()
    check_overrides(sys.argv[1:])
    main()
    if FAILED_JOBS:
        print(f"{len(FAILED_JOBS)} job(s) failed; reasons are in the sweep summary", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    cli()
