"""The run record: written atomically as results.json, so a killed run leaves no half-written file."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

RESULTS_FILE = "results.json"


def _default(obj: Any) -> Any:
    if hasattr(obj, "value"):  # enums
        return obj.value
    return str(obj)


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, default=_default)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_results(run_dir: Path) -> dict | None:
    path = Path(run_dir) / RESULTS_FILE
    if not path.exists():
        return None
    with open(path) as f:
        return json.load(f)
