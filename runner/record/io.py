"""Reading and writing the typed record as results.json (atomically, runner/results.py)."""

from __future__ import annotations

from pathlib import Path

from runner.record.record import SCHEMA_VERSION, Record
from runner.results import RESULTS_FILE, read_results, write_json_atomic


def read_record(run_dir: Path) -> Record | None:
    data = read_results(run_dir)
    return None if data is None else Record.from_dict(data)


def write_record(path: Path, record: Record) -> None:
    """Write `record` to `path` (a run folder's results.json, or a rank's file), stamped with the schema version."""
    if not record.has("schema_version"):  # a record read from an older file: the version goes first
        record.schema_version = SCHEMA_VERSION
        order = record.__dict__["_order"]
        order.insert(0, order.pop(order.index("schema_version")))
    write_json_atomic(path, record.to_dict())


__all__ = ["RESULTS_FILE", "read_record", "write_record"]
