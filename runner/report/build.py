"""Write a sweep's report: summary.csv, summary.md and PNG charts."""

from __future__ import annotations

import logging
from pathlib import Path

from runner.config.run import ReportConfig
from runner.report import quality
from runner.report.baseline import DEFAULT_BASELINE, parse, speedups
from runner.report.collect import collect_jobs
from runner.report.plots import write_plots
from runner.report.tables import cell, constant_columns, markdown, write_csv
from runner.results import write_text_atomic

log = logging.getLogger(__name__)


def _report_settings(jobs) -> list[dict]:
    """The `report` node of each job's composed config (a job without a record has none)."""
    return [((job.record.config if job.record else None) or {}).get("report") or {} for job in jobs]


def baseline_of(jobs) -> list[str]:
    """The sweep's own report.baseline (from any job's record), else the default eager + unquantized."""
    for report in _report_settings(jobs):
        if report.get("baseline"):
            return list(report["baseline"])
    return list(DEFAULT_BASELINE)


def budget_of(jobs) -> tuple[float, float]:
    """The sweep's quality budget (report.max_perplexity_increase, report.min_cosine_similarity)."""
    defaults = ReportConfig()
    for report in _report_settings(jobs):
        if "max_perplexity_increase" in report:
            return report["max_perplexity_increase"], report.get(
                "min_cosine_similarity", defaults.min_cosine_similarity
            )
    return defaults.max_perplexity_increase, defaults.min_cosine_similarity


def write_report(
    sweep_dir: Path,
    baseline: list[str] | None = None,
    plots: bool = True,
    collected: tuple | None = None,
    budget: tuple[float, float] | None = None,
) -> dict:
    """`collected`: what `collect_jobs(sweep_dir)` returned, where the caller has read the folder already."""
    sweep_dir = Path(sweep_dir)
    jobs, varied = collected or collect_jobs(sweep_dir)
    if not jobs:
        raise FileNotFoundError(f"no runs found under {sweep_dir}")
    selectors = parse(baseline or baseline_of(jobs))
    speedup, how = speedups(jobs, varied, selectors)
    rows = [{**job.row, "speedup": speedup.get(job.row["job"])} if speedup else job.row for job in jobs]
    write_csv(rows, sweep_dir / "summary.csv")
    images, notes = [], []
    same = constant_columns(rows, keep={"job", "status", "error", "speedup", *varied})
    if plots:
        context = ", ".join(f"{k}={same[k]}" for k in ("model", "weights", "attn_implementation") if k in same)
        try:
            images = write_plots(rows, varied, sweep_dir, title=f"{sweep_dir.name}: {context}" if context else "")
            images += [p for p in [quality.write_pareto_plot(rows, varied, sweep_dir, title=context)] if p]
        except ImportError as error:  # a bare GPU host may lack matplotlib: the tables still matter most
            notes.append(f"No charts: {error.name or 'matplotlib'} is not installed (pip install matplotlib).")
    failed = [r for r in rows if r["status"] != "ok"]
    text = [
        f"# Sweep {sweep_dir}\n",
        f"{len(rows)} job(s), {len(rows) - len(failed)} ok, {len(failed)} failed. "
        f"Varied: {', '.join(varied) or 'nothing'}.",
    ]
    if same:
        text.append("Same in every job: " + ", ".join(f"{k}={cell(v)}" for k, v in same.items()) + ".")
    budget = budget or budget_of(jobs)
    text += [
        how,
        *notes,
        "Units: latency in ms (mean over the measured calls), throughput in tokens/s or samples/s, memory in MiB, "
        "energy in J per token.\n",
        markdown(rows, hide=set(same)),
        *quality.verdict(rows, varied, *budget),
    ]
    text += [f"![{image.stem}]({image.name})\n" for image in images]
    write_text_atomic(sweep_dir / "summary.md", "\n".join(text))
    return {"rows": rows, "varied": varied, "failed": len(failed), "plots": images, "speedup": how}
