"""What the benchmark scripts share: the run config composed as `python -m runner` would, and a model and inputs
prepared by the runner's own stages, so that a script times the runner's work and not a look-alike."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runner.config import register_configs  # noqa: E402
from runner.config.load import to_run_config  # noqa: E402
from runner.config.run import RunConfig  # noqa: E402
from runner.context import RunContext  # noqa: E402
from runner.devices import resolve_device  # noqa: E402
from runner.errors import ConfigError  # noqa: E402
from runner.pipeline import run_stages  # noqa: E402


def run_config(overrides: list[str]) -> RunConfig:
    """The typed, checked config of these overrides; a bad one exits with the runner's message."""
    register_configs()
    try:
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            cfg = compose(config_name="config", overrides=overrides)
        run_cfg = to_run_config(cfg)
    except (ConfigError, HydraException) as error:  # exit 2, as `python -m runner` does for bad input
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    if run_cfg.hardware.threads:  # as execute() does
        torch.set_num_threads(run_cfg.hardware.threads)
    return run_cfg


def prepared(run_cfg: RunConfig, run_dir: Path, stages: tuple[str, ...] = ("load", "convert", "warmup")) -> RunContext:
    """A context after the runner's load, convert and warmup stages: the model, the inputs, warm. Undo it with
    `runner.pipeline.reverse_all(ctx)`."""
    ctx = RunContext(cfg=run_cfg, run_dir=run_dir, device=resolve_device(run_cfg.hardware))
    return run_stages(ctx, list(stages))


def device_name(ctx: RunContext) -> str:
    return torch.cuda.get_device_name(ctx.device) if ctx.device.type == "cuda" else "cpu"
