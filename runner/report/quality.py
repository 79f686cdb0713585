"""The quality side of a sweep: columns from each record's `quality` section, the verdict under the user's budget
(fastest and smallest job within it) and the speed-against-quality chart with its Pareto front."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from runner.report.collect import latency_ms


def loss(row: dict[str, Any]) -> float | None:
    """How much quality a job gave up: its relative perplexity increase, or 1 - its least pooled cosine."""
    if row.get("quality_perplexity_increase_relative") is not None:
        return row["quality_perplexity_increase_relative"]
    if row.get("quality_cosine_similarity_min") is not None:
        return 1 - row["quality_cosine_similarity_min"]
    return None


def within_budget(row: dict[str, Any], max_perplexity_increase: float, min_cosine_similarity: float) -> bool:
    if row.get("quality_perplexity_increase_relative") is not None:
        return row["quality_perplexity_increase_relative"] <= max_perplexity_increase
    if row.get("quality_cosine_similarity_min") is not None:
        return row["quality_cosine_similarity_min"] >= min_cosine_similarity and row.get(
            "quality_label_agreement", 1.0
        ) in (None, 1.0)
    return False


def _name(row: dict[str, Any], varied: list[str]) -> str:
    return ", ".join(f"{k}={row.get(k)}" for k in varied) or row["job"]


def verdict(rows: list[dict[str, Any]], varied: list[str], max_increase: float, min_cosine: float) -> list[str]:
    """Markdown lines naming the fastest and the smallest job within the quality budget."""
    measured = [r for r in rows if r.get("status") == "ok" and loss(r) is not None]
    if not measured:
        return []
    budget = f"relative perplexity increase <= {max_increase:g}, pooled cosine >= {min_cosine:g}"
    within = [r for r in measured if within_budget(r, max_increase, min_cosine)]
    lines = [f"## Verdict\n\nQuality budget: {budget} (report.max_perplexity_increase, report.min_cosine_similarity)."]
    lines.append(f"{len(within)} of {len(measured)} job(s) with a quality figure stay within it.")
    timed = [r for r in within if latency_ms(r) is not None]
    if timed:
        best = min(timed, key=latency_ms)
        lines.append(f"- fastest within budget: **{_name(best, varied)}** (job {best['job']}, "
                     f"{latency_ms(best):.4g} ms, quality loss {loss(best):.4g})")  # fmt: skip
    sized = [r for r in within if r.get("footprint_MiB") is not None]
    if sized:
        small = min(sized, key=lambda r: r["footprint_MiB"])
        lines.append(f"- smallest within budget: **{_name(small, varied)}** (job {small['job']}, "
                     f"{small['footprint_MiB']:.4g} MiB, quality loss {loss(small):.4g})")  # fmt: skip
    if not within:
        lines.append("- no job stays within the budget")
    return lines + [""]


def pareto(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes (lower latency and lower loss)."""
    front = []
    for i, (x, y) in enumerate(points):
        dominated = any((ox <= x and oy <= y) and (ox < x or oy < y) for j, (ox, oy) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return front


def write_pareto_plot(rows: list[dict[str, Any]], varied: list[str], out_dir: Path, title: str = "") -> Path | None:
    """speed_quality.png: latency against quality loss, one point per job, the Pareto front joined and ringed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    shown = [r for r in rows if r.get("status") == "ok" and loss(r) is not None and latency_ms(r) is not None]
    if not shown:
        return None
    points = [(latency_ms(r), loss(r)) for r in shown]
    front = sorted(pareto(points), key=lambda i: points[i][0])
    figure = Figure(figsize=(7, 5), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot(1, 1, 1)
    ax.scatter([p[0] for p in points], [p[1] for p in points], color="tab:blue", label="job")
    ax.plot([points[i][0] for i in front], [points[i][1] for i in front], color="tab:red", marker="o",
            markerfacecolor="none", markersize=12, label="Pareto front")  # fmt: skip
    for row, (x, y) in zip(shown, points, strict=True):
        ax.annotate(_name(row, varied), (x, y), fontsize=7, xytext=(4, 4), textcoords="offset points")
    perplexity = any(r.get("quality_perplexity_increase_relative") is not None for r in shown)
    ax.set_xlabel("latency (ms): forward, or generate end-to-end")
    ax.set_ylabel("relative perplexity increase" if perplexity else "1 - least pooled cosine similarity")
    ax.set_title(title or "speed against quality")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    path = Path(out_dir) / "speed_quality.png"
    partial = path.with_name(f".{path.stem}.tmp.png")
    figure.savefig(partial, dpi=100)
    os.replace(partial, path)
    return path
