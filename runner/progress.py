"""Progress for long work: a live bar on a terminal, a few log lines elsewhere (never one per step).

In a sweep every line and bar names the job ("job 3 of 12"), so a log of many jobs stays readable.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")
log = logging.getLogger(__name__)

LOG_EVERY_S = 15.0  # without a terminal: at most one progress line per phase this often
_JOB = {"label": ""}


def set_job(label: str) -> None:
    """Name the job (e.g. "job 3 of 12") in the progress of everything that follows, in this process."""
    _JOB["label"] = label


def job_label() -> str:
    return _JOB["label"]


@cache
def sweep_size(sweep_dir: str) -> int | None:
    """How many jobs Hydra's basic sweeper makes of the sweep saved in `multirun.yaml`, None if unknown (another
    sweeper, or a file that is not there yet)."""
    try:
        from hydra.core.override_parser.overrides_parser import OverridesParser
        from omegaconf import OmegaConf

        saved = OmegaConf.load(Path(sweep_dir) / "multirun.yaml")
        params = saved.hydra.sweeper.get("params") or {}
        arguments = [f"{key}={value}" for key, value in params.items()] + list(saved.hydra.overrides.task)
        size = {}
        for override in OverridesParser.create().parse_overrides(arguments):
            # later arguments replace earlier ones of the same key, as in the sweeper
            size[override.get_key_element()] = (
                len(list(override.sweep_string_iterator())) if override.is_sweep_override() else 1
            )
        total = 1
        for count in size.values():
            total *= count
        return total
    except Exception:  # progress is a courtesy: never fail a job over it
        return None


def describe_job(job_num: int, sweep_dir: str) -> str:
    total = sweep_size(sweep_dir)
    return f"job {job_num + 1} of {total}" if total else f"job {job_num + 1}"


def steps(items: Iterable[T], phase: str) -> Iterator[T]:
    """Iterate `items`, showing "job k of n, phase, i/total"."""
    items = list(items)
    label = f"{job_label()} {phase}".strip()
    if sys.stderr.isatty():
        yield from tqdm(items, desc=label, leave=False, mininterval=1.0)
        return
    start = last = time.monotonic()
    for done, item in enumerate(items):
        yield item
        now = time.monotonic()
        if now - last >= LOG_EVERY_S and done + 1 < len(items):
            last = now
            log.info("%s: %d/%d (%.0f s)", label, done + 1, len(items), now - start)
    if last != start:  # a phase long enough to report on also reports its end
        log.info("%s: %d/%d done (%.0f s)", label, len(items), len(items), time.monotonic() - start)
