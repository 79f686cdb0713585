"""The run record: written atomically as results.json, so a killed run leaves no half-written file."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

RESULTS_FILE = "results.json"
# run-level switches: a rerun that changes them (resume=true, a longer timeout) is still the same job
RUN_SWITCHES = ("resume", "timeout_s", "isolate", "overwrite")


def _file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


FILE_MODE = _file_mode()  # mkstemp makes 0600 files; records are meant to be shared like any other output


def _default(obj: Any) -> Any:
    if hasattr(obj, "value"):  # enums
        return obj.value
    return str(obj)


def write_text_atomic(path: Path, text: str) -> None:
    """Readers see the old file or the new one, never a part: write a temporary file, fsync, rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, default=_default))


def read_results(run_dir: Path) -> dict | None:
    path = Path(run_dir) / RESULTS_FILE
    if not path.exists():
        return None
    with open(path) as f:
        return json.load(f)


def job_overrides(overrides: list[str]) -> list[str]:
    """The overrides that make a job what it is (run-level switches left out), in a stable order."""
    return sorted(o for o in overrides if o.split("=", 1)[0].lstrip("+~") not in RUN_SWITCHES)


def finished_ok(run_dir: Path, overrides: list[str]) -> dict | None:
    """The record of a job that already succeeded with these same overrides (what `resume=true` skips), else None.
    Comparing overrides guards against a sweep whose job numbers now mean other jobs."""
    try:
        record = read_results(run_dir)
    except (OSError, ValueError):  # unreadable: run the job again
        return None
    same = record and job_overrides(record.get("overrides") or []) == job_overrides(overrides)
    if same and record.get("status") == "ok":
        return record
    return None
