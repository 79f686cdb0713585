"""The run record: written atomically as results.json, so a killed run leaves no half-written file."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

RESULTS_FILE = "results.json"
# the folder of a job's tuning trials (runner/tuning_trials.py): their records are the job's, not jobs of a sweep
TRIALS_DIR = "tuning_trials"
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


def job_config(config: dict) -> dict:
    """The composed config that makes a job what it is: run-level switches and the sweep report's settings left
    out, as JSON would write it (enums as their values), so a record's config and a new one compare equal."""
    kept = {k: v for k, v in config.items() if k not in (*RUN_SWITCHES, "report", "hydra")}
    return json.loads(json.dumps(kept, default=_default))


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    keys = sorted(set(old) | set(new))
    found = []
    for key in keys:
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            found.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return found


def finished_ok(run_dir: Path, config: dict) -> tuple[dict | None, str]:
    """(the record of a job that already succeeded with this same composed config, why not else). What
    `resume=true` skips; comparing composed configs, not override strings, catches an edited experiment file."""
    try:
        record = read_results(run_dir)
    except (OSError, ValueError) as e:  # unreadable: run the job again
        return None, f"its record is unreadable ({e})"
    if record is None:
        return None, "it has no record"
    if record.get("status") != "ok":
        return None, f"its record's status is {record.get('status')!r}"
    changed = _differences(job_config(record.get("config") or {}), job_config(config))
    if changed:
        shown = "; ".join(changed[:3]) + ("; ..." if len(changed) > 3 else "")
        return None, f"its config changed since the recorded run ({shown})"
    return record, ""
