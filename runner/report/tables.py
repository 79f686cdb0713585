"""summary.csv and summary.md from collected rows."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any


def columns(rows: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns(rows))
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buffer.getvalue())


def markdown(rows: list[dict[str, Any]]) -> str:
    names = columns(rows)
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    lines += ["| " + " | ".join(_cell(row.get(n)) for n in names) + " |" for row in rows]
    return "\n".join(lines) + "\n"
