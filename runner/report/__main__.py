"""`python -m runner.report DIR`: write summary.csv, summary.md and PNG charts for a sweep folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runner.report.build import write_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runner.report", description=__doc__)
    parser.add_argument("sweep_dir", type=Path, help="a multirun folder (holding one folder per job)")
    parser.add_argument(
        "--baseline",
        nargs="+",
        metavar="KEY=VALUE",
        help="the job speedups are measured against (default: the sweep's report.baseline, else "
        "attention=eager quant=none)",
    )
    parser.add_argument("--no-plots", action="store_true", help="write the tables only")
    args = parser.parse_args(argv)
    if not args.sweep_dir.is_dir():
        print(f"error: {args.sweep_dir} is not a folder", file=sys.stderr)
        return 2
    try:
        summary = write_report(args.sweep_dir, args.baseline, plots=not args.no_plots)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    written = ["summary.csv", "summary.md", *(p.name for p in summary["plots"])]
    print(f"wrote {', '.join(written)} in {args.sweep_dir}: {len(summary['rows'])} jobs, {summary['failed']} failed")
    print(summary["speedup"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
