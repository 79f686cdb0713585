"""Decode throughput and roofline share against the batch, one line per quantization, from a decode_limit sweep.

    python scripts/decode_limit_chart.py multirun/decode_limit/<date>

The folder may hold several sweeps (every job under it counts), e.g. one session's batch sweep beside another's.
A job compiled with another convert.compile_options.mode than the default (max-autotune) is its own line,
"fp8wo (reduce-overhead)": the two modes tune different kernels and are not one series.

Writes decode_limit.png (decode tokens/s and share of the memory bandwidth against batch size, log2 x axis,
with each scheme's Linear-layer ridge: the batch where its matmuls turn from bandwidth- to compute-bound) and
decode_limit.md (the same figures as a table) into the sweep folder. Failed jobs are listed, not drawn."""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from runner.config.pipeline import CompileOptions
from runner.report.collect import collect_jobs

DEFAULT_MODE = CompileOptions.mode


def compile_mode(compiled: dict, config: dict) -> str | None:
    """The mode a compiled job ran with: its record's `convert.compile.mode` (`compiled`), else its config's; None
    if not compiled. Records from before convert.compile_options (bcad23d) compiled with reduce-overhead."""
    if not config.get("convert", {}).get("compile"):
        return None
    return compiled.get("mode") or config["convert"].get("compile_options", {}).get("mode") or "reduce-overhead"


def points(sweep_dir: Path) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """scheme -> its jobs sorted by batch (batch, decode tokens/s, ms/token, roofline shares, ridge); failures."""
    jobs, _ = collect_jobs(sweep_dir)
    lines: dict[str, list[dict[str, Any]]] = defaultdict(list)
    failed = []
    for job in jobs:
        record, row = job.record, job.row  # the row: the figures collect_jobs flattened already
        config = (record.config if record else None) or {}
        compiled = ((record.convert.to_dict() if record and record.convert else {}).get("compile")) or {}
        quant = config.get("quant", {}).get("name", job.overrides.get("quant", "?"))
        if (mode := compile_mode(compiled, config)) not in (None, DEFAULT_MODE):
            quant = f"{quant} ({mode})"
        batch = config.get("scenario", {}).get("batch_size")
        if row["status"] != "ok" or row.get("per_token_ms") is None:
            lines_of = (record.error.message or "").strip().splitlines() if record and record.error else []
            reason = lines_of[0] if lines_of else ("no message" if record and record.error else "no record")
            failed.append(f"quant={quant} batch={batch}: {reason}")  # the first line: a traceback's is in the record
            continue
        roofline = record.roofline
        decode = roofline.decode.to_dict() if roofline and roofline.decode else {}
        lines[quant].append(
            {
                "batch": batch,
                "tokens_per_s": row["decode_tokens_per_s"],
                "ms_per_token": row["per_token_ms"],
                "share_of_bandwidth": decode.get("share_of_bandwidth"),
                "share_of_peak": decode.get("share_of_peak"),
                "bound": decode.get("bound"),
                "ridge": decode.get("linear_ridge_batch"),
                "weight_bytes": record.model.footprint_bytes if record.model else None,
                "compile_s": compiled.get("first_call_s"),
            }
        )
    return {q: sorted(rows, key=lambda r: r["batch"]) for q, rows in sorted(lines.items())}, failed


def table(lines: dict[str, list[dict[str, Any]]], failed: list[str]) -> str:
    def pct(value):
        return f"{100 * value:.0f} %" if value is not None else "-"

    out = [
        "| quant | batch | decode tok/s | ms/token | share of bandwidth | share of peak | bound | Linear ridge (batch) "
        "| first call (s) |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for quant, rows in lines.items():
        for r in rows:
            ridge = f"{r['ridge']:.0f}" if r["ridge"] else "-"
            first = f"{r['compile_s']:.0f}" if r["compile_s"] else "-"
            out.append(
                f"| {quant} | {r['batch']} | {r['tokens_per_s']:.0f} | {r['ms_per_token']:.2f} | "
                f"{pct(r['share_of_bandwidth'])} | {pct(r['share_of_peak'])} | {r['bound'] or '-'} | {ridge} "
                f"| {first} |"
            )
    out += [f"- failed: {line}" for line in failed]
    return "\n".join(out) + "\n"


def weights_of(line: str) -> str:
    """The weight format of a line: its label less the compile mode points() appends ("int4wo (reduce-overhead)")."""
    return line.split(" (")[0]


RIDGE_TOLERANCE = 0.03  # ridges this close (relative) are one line: the same bytes a weight, other scale layouts


def ridge_lines(lines: dict[str, list[dict[str, Any]]]) -> dict[float, list[str]]:
    """Each Linear ridge (batch) once, with the weight formats whose ridge it is: "int4wo" and "int4wo
    (reduce-overhead)" are one format; int4wo and int4wo_gemlite, both about half a byte a weight, share one line
    (their ridges differ by their scales' bytes, within RIDGE_TOLERANCE)."""
    ridges: dict[float, list[str]] = {}
    for quant, rows in lines.items():
        ridge = next((r["ridge"] for r in rows if r["ridge"]), None)
        if not ridge:
            continue
        at = next((k for k in ridges if abs(ridge - k) <= RIDGE_TOLERANCE * k), ridge)
        names, weights = ridges.setdefault(at, []), weights_of(quant)
        names.extend([weights] if weights not in names else [])
    return ridges


def chart(lines: dict[str, list[dict[str, Any]]], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4.5))
    FigureCanvasAgg(figure)
    rate, share = figure.subplots(1, 2)
    colors = {}
    for quant, rows in lines.items():
        batches = [r["batch"] for r in rows]
        (line,) = rate.plot(batches, [r["tokens_per_s"] for r in rows], marker="o", label=quant)
        share.plot(batches, [r["share_of_bandwidth"] or 0 for r in rows], marker="o", color=line.get_color())
        colors.setdefault(weights_of(quant), line.get_color())
    for ridge, names in ridge_lines(lines).items():  # right of it, the matmuls are compute-bound: bandwidth falls
        for ax in (rate, share):
            ax.axvline(ridge, color=colors[names[0]], linestyle=":", linewidth=1)
        share.annotate(f"{', '.join(names)} ridge ≈ {ridge:.0f}", (ridge, 0.05), rotation=90, fontsize=7)
    for ax, label in ((rate, "decode tokens/s (all rows)"), (share, "share of memory bandwidth")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    share.set_ylim(0, 1)
    rate.legend()
    figure.suptitle("Decode at the hardware limit (dotted: batch where the Linear layers turn compute-bound)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep_dir", type=Path)
    args = parser.parse_args(argv)
    if not args.sweep_dir.is_dir():
        print(f"error: sweep_dir {args.sweep_dir} is not a folder: give a decode_limit sweep's folder", file=sys.stderr)
        return 2
    lines, failed = points(args.sweep_dir)
    if not lines:
        print(f"no finished decode jobs under {args.sweep_dir}", file=sys.stderr)
        for line in failed:
            print(f"- {line}", file=sys.stderr)
        return 1
    (args.sweep_dir / "decode_limit.md").write_text(table(lines, failed))
    chart(lines, args.sweep_dir / "decode_limit.png")
    print(table(lines, failed))
    print(f"wrote {args.sweep_dir / 'decode_limit.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
