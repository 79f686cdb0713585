"""A run (or sweep) folder of its own: claimed atomically before Hydra writes anything there, so two runs started
in the same second never share one, and an earlier run's folder is never written into unless the user says so."""

from __future__ import annotations

import os
from pathlib import Path

from runner.errors import ConfigError

MAX_SUFFIX = 1000
# what Hydra writes first into a run folder / a sweep folder; creating it exclusively is the claim
RUN_MARKER, SWEEP_MARKER = ".hydra", "multirun.yaml"


def _take(folder: Path, sweep: bool) -> bool:
    """Atomically claim `folder`: True for exactly one caller, False if a run (or a claim) is already there."""
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / "results.json").exists():
        return False
    try:
        if sweep:
            os.close(os.open(folder / SWEEP_MARKER, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        else:
            (folder / RUN_MARKER).mkdir()
    except FileExistsError:
        return False
    return True


def claim(folder: Path, *, sweep: bool, given: bool, reuse: bool) -> Path:
    """The folder this run writes to. `given`: the user named it (hydra.run.dir / hydra.sweep.dir), so a taken one
    is refused instead of moved to `<name>_2`; `reuse`: overwrite=true (or resume=true for a sweep) allows a taken
    one."""
    key = "hydra.sweep.dir" if sweep else "hydra.run.dir"
    if given:
        if _take(folder, sweep) or reuse:
            return folder
        switch = "resume=true to rerun its jobs without an ok result, or " if sweep else ""
        raise ConfigError(
            f"{key}={folder} already holds a {'sweep' if sweep else 'run'}: pick a new folder, or add "
            f"{switch}overwrite=true to write into it"
        )
    for n in range(1, MAX_SUFFIX):
        candidate = folder if n == 1 else folder.with_name(f"{folder.name}_{n}")
        if _take(candidate, sweep):
            return candidate
    raise ConfigError(f"{key}: {folder} and {MAX_SUFFIX - 2} numbered variants are all taken; set {key}=<new folder>")
