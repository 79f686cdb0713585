"""Progress for long work: a live bar on a terminal, a few log lines elsewhere (never one per step)."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def steps(items: Iterable[T], phase: str) -> Iterator[T]:
    yield from tqdm(items, desc=phase, leave=False, disable=not sys.stderr.isatty(), mininterval=1.0)
