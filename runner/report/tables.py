"""summary.csv and summary.md from collected rows."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from runner.results import write_text_atomic

ERROR_CHARS = 300  # the table keeps the reason readable; the record holds all of it


def columns(rows: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.4g}"  # 12800 tokens/s, not 1.28e+04
    text = str(value).replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns(rows))
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buffer.getvalue())


def constant_columns(rows: list[dict[str, Any]], keep: set[str]) -> dict[str, Any]:
    """Columns with one value in every job (the model of a one-model sweep): said once, above the table, instead of
    in every row. A failed job has no figures: an empty cell there does not break it where at least two jobs ran
    and agree, but a different value does; an empty cell in a job that ran does too."""
    if len(rows) < 2:
        return {}
    ran = [row for row in rows if row.get("status") == "ok"]
    failed = [row for row in rows if row.get("status") != "ok"]
    constant = {}
    for name in columns(rows):
        if name in keep:
            continue
        everywhere = {cell(row.get(name)) for row in rows}
        in_ran = {cell(row.get(name)) for row in ran}
        in_failed = {cell(row.get(name)) for row in failed} - {""}
        same = len(everywhere) == 1 or (len(ran) >= 2 and len(in_ran) == 1 and in_failed <= in_ran)
        if same and "" not in in_ran and everywhere != {""}:
            constant[name] = next(r.get(name) for r in rows if r.get(name) is not None)
    return constant


def markdown(rows: list[dict[str, Any]], hide: set[str] = frozenset()) -> str:
    """A table of the columns that have a value somewhere, with the (long) error reason last."""
    names = [n for n in columns(rows) if n not in hide and n != "error" and any(cell(r.get(n)) for r in rows)]
    if any(row.get("error") for row in rows):
        names.append("error")
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    lines += ["| " + " | ".join(cell(row.get(n)) for n in names) + " |" for row in rows]
    return "\n".join(lines) + "\n"
