"""`python -m runner.report DIR`: write summary.csv, summary.md for a sweep folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runner.report.build import write_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runner.report", description=__doc__)
    parser.add_argument("sweep_dir", type=Path, help="a multirun folder (holding one folder per job)")
    args = parser.parse_args(argv)
    if not args.sweep_dir.is_dir():
        print(f"error: {args.sweep_dir} is not a folder", file=sys.stderr)
        return 2
    try:
        summary = write_report(args.sweep_dir)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.sweep_dir}/summary.csv and summary.md: {len(summary['rows'])} jobs, {summary['failed']} failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
