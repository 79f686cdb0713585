"""Ranges of the config's own values, checked first (runner/checks/base.py): sizes and counts that must be
positive, a run name and a save folder that stay inside the run's folder, a pipeline that loads a model before the
stages that use one."""

from __future__ import annotations

from pathlib import PurePath

from runner.checks.base import check, raise_all
from runner.config.hardware import DeviceKind
from runner.config.pipeline import MODEL_STAGE
from runner.config.run import RunConfig
from runner.errors import ConfigError


@check(values=True)
def hardware_numbers(cfg: RunConfig) -> None:
    h = cfg.hardware
    problems = []
    if h.threads is not None and h.threads < 1:
        problems.append(f"hardware.threads={h.threads} must be at least 1, or null for torch's default")
    if h.device < 0:
        problems.append(f"hardware.device={h.device} is a GPU index: 0 or more")
    # null: by kind. hardware=tp needs 2 or more (runner/checks/distributed.py says so once the number is >= 1)
    if h.num_gpus is not None and h.num_gpus < (0 if h.kind == DeviceKind.cpu else 1):
        least = "0 with hardware=cpu" if h.kind == DeviceKind.cpu else "1 (2 or more for hardware=tp)"
        problems.append(f"hardware.num_gpus={h.num_gpus} must be at least {least}, or null for the kind's default")
    raise_all(problems)


@check(values=True)
def roofline_ceilings(cfg: RunConfig) -> None:
    raise_all(
        [
            f"roofline.{key}={value} must be positive, or null for the GPU's datasheet figure"
            for key in ("peak_tflops", "bandwidth_gbs")
            if (value := getattr(cfg.roofline, key)) is not None and value <= 0
        ]
    )


@check(values=True)
def name_is_a_label(cfg: RunConfig) -> None:
    """The name is part of the run folder's name (hydra.run.dir): a path in it would move the run elsewhere."""
    name = cfg.name
    if not name or name in (".", "..") or any(c in name for c in "/\\\0"):
        raise ConfigError(f"name={name!r} must be a plain label (no '/', '\\', or '..'): it names the run's folder")


@check(values=True)
def save_directory_inside_the_run(cfg: RunConfig) -> None:
    directory = PurePath(cfg.save.directory)
    if not directory.parts or directory.is_absolute() or ".." in directory.parts:
        raise ConfigError(
            f"save.directory={cfg.save.directory!r} must be a folder inside the run's folder (relative, no '..'), "
            "e.g. save.directory=model"
        )


@check(values=True)
def stages_have_a_model(cfg: RunConfig) -> None:
    stages = cfg.pipeline.stages
    if not stages:
        raise ConfigError(
            f"pipeline.stages is empty: a run needs at least [{MODEL_STAGE}] (pipeline=load_only), or pipeline=default"
        )
    before = stages[: stages.index(MODEL_STAGE)] if MODEL_STAGE in stages else stages
    if before:
        raise ConfigError(
            f"pipeline.stages={stages}: {', '.join(before)} need(s) the model, which the {MODEL_STAGE!r} stage "
            f"makes: put {MODEL_STAGE} first, e.g. pipeline.stages=[{MODEL_STAGE},{','.join(before)}]"
        )
