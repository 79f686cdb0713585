"""PNG charts of a sweep: latency, throughput, speedup against the baseline, peak memory.

With a numeric sweep axis (batch size, sequence length) it is the x axis and every other setting is a line, as in
the seed's FlashAttention speedup charts; otherwise each job is a bar. Failed jobs are left out (the tables list
them with their reason). Matplotlib's object API with the Agg canvas: no display, no global backend switch.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

CHARTS: dict[str, dict[str, str]] = {
    "latency": {
        "forward_ms": "forward latency (ms)",
        "e2e_ms": "generate end-to-end (ms)",
        "prefill_ms": "prefill, time to first token (ms)",
        "per_token_ms": "per-token decode latency (ms)",
    },
    "throughput": {
        "forward_tokens_per_s": "forward (tokens/s)",
        "forward_samples_per_s": "forward (samples/s)",
        "decode_tokens_per_s": "decode (tokens/s)",
        "prefill_tokens_per_s": "prefill (tokens/s)",
    },
    "speedup": {"speedup": "speedup vs baseline (x)"},
    "memory": {
        "peak_allocated_MiB": "torch peak allocated (MiB)",
        "peak_reserved_MiB": "torch peak reserved (MiB)",
        "nvml_process_MiB": "NVML, this process (MiB)",
        "nvml_device_used_MiB": "NVML, device used (MiB)",
        "peak_rss_MiB": "CPU RSS peak (MiB)",
    },
}


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def x_axis(rows: list[dict[str, Any]], varied: list[str]) -> str | None:
    """The first varied key whose values are all numbers."""
    for key in varied:
        if rows and all(_number(row.get(key)) is not None for row in rows):
            return key
    return None


def _label(row: dict[str, Any], keys: list[str]) -> str:
    return ", ".join(f"{k}={row.get(k)}" for k in keys) or row["job"]


def _draw(ax, rows: list[dict[str, Any]], metric: str, varied: list[str], x: str | None) -> None:
    present = [row for row in rows if _number(row.get(metric)) is not None]
    if x is not None:
        others = [k for k in varied if k != x]
        series: dict[str, list[tuple[float, float]]] = {}
        for row in present:
            label = ", ".join(f"{k}={row.get(k)}" for k in others)  # one line per combination of the others
            series.setdefault(label, []).append((_number(row[x]), _number(row[metric])))
        for label, points in series.items():
            xs, ys = zip(*sorted(points), strict=True)
            ax.plot(xs, ys, marker="o", label=label or None)
        ax.set_xlabel(x)
        ticks = sorted({_number(row[x]) for row in present})
        if len(ticks) <= 12:  # the swept values themselves, not 1.2, 1.4, ...
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        if others:
            ax.legend(fontsize="small")
    else:
        labels = [_label(row, varied) for row in present]
        ax.bar(range(len(present)), [_number(row[metric]) for row in present], color="tab:blue")
        ax.set_xticks(range(len(present)), labels, rotation=30 if len(present) > 3 else 0, ha="right", fontsize=8)
    if metric == "speedup":
        ax.axhline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.grid(True, alpha=0.3)


def write_plots(rows: list[dict[str, Any]], varied: list[str], out_dir: Path, title: str = "") -> list[Path]:
    """One PNG per chart that has data; returns the files written. Raises ImportError without matplotlib."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ok = [row for row in rows if row.get("status") == "ok"]
    x = x_axis(ok, varied)
    written = []
    for chart, metrics in CHARTS.items():
        shown = {m: t for m, t in metrics.items() if any(_number(row.get(m)) is not None for row in ok)}
        if not shown:
            continue
        figure = Figure(figsize=(5 * len(shown), 4), layout="constrained")
        FigureCanvasAgg(figure)
        for index, (metric, heading) in enumerate(shown.items()):
            ax = figure.add_subplot(1, len(shown), index + 1)
            _draw(ax, ok, metric, varied, x)
            ax.set_title(heading)
        if title:
            figure.suptitle(title, fontsize="medium")
        path = Path(out_dir) / f"{chart}.png"
        partial = path.with_name(f".{path.stem}.tmp.png")  # renamed into place: no half-written chart
        figure.savefig(partial, dpi=100)
        os.replace(partial, path)
        written.append(path)
    return written
