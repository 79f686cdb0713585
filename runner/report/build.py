"""Write a sweep's report: summary.csv and summary.md (and plots where available)."""

from __future__ import annotations

import logging
from pathlib import Path

from runner.report.collect import collect
from runner.report.tables import markdown, write_csv

log = logging.getLogger(__name__)


def write_report(sweep_dir: Path) -> dict:
    sweep_dir = Path(sweep_dir)
    rows, varied = collect(sweep_dir)
    if not rows:
        raise FileNotFoundError(f"no runs found under {sweep_dir}")
    write_csv(rows, sweep_dir / "summary.csv")
    failed = [r for r in rows if r["status"] != "ok"]
    header = (
        f"# Sweep {sweep_dir}\n\n{len(rows)} job(s), {len(rows) - len(failed)} ok, {len(failed)} failed. "
        f"Varied: {', '.join(varied) or 'nothing'}.\n\n"
    )
    (sweep_dir / "summary.md").write_text(header + markdown(rows))
    return {"rows": rows, "varied": varied, "failed": len(failed)}
