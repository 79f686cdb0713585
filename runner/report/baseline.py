"""Speedup against a baseline job, the way the seed compares FlashAttention with the default attention: each
job is compared with the baseline job that shares its other sweep settings (same batch size, same length)."""

from __future__ import annotations

from typing import Any

from runner.report.collect import Job, latency_ms

DEFAULT_BASELINE = ["attention=eager", "quant=none"]


def parse(selectors: list[str]) -> dict[str, str]:
    pairs = {}
    for selector in selectors:
        key, sep, value = str(selector).partition("=")
        if not sep:
            raise ValueError(f"baseline selector {selector!r} is not KEY=VALUE (e.g. attention=eager)")
        pairs[key.strip().lstrip("+")] = value.strip()
    return pairs


def _same(actual: Any, wanted: str) -> bool:
    if isinstance(actual, dict):  # a group: compare its option name
        actual = actual.get("name")
    if isinstance(actual, bool):
        return str(actual).lower() == wanted.lower()
    return actual is not None and str(actual) == wanted


def _setting(job: Job, key: str) -> Any:
    """The job's value of `key`, from its composed config (so defaults count), else from its overrides."""
    node: Any = job.record.config if job.record else None
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return job.overrides.get(key)
        node = node[part]
    return node


def matches(job: Job, selectors: dict[str, str]) -> bool:
    return all(_same(_setting(job, key), value) for key, value in selectors.items())


def speedups(jobs: list[Job], varied: list[str], selectors: dict[str, str]) -> tuple[dict[str, float], str]:
    """job name -> baseline latency / job latency (> 1: faster than the baseline), and a sentence saying how."""
    # sweep axes the baseline does not pin must match between a job and its baseline
    pinned_groups = {key.split(".")[0] for key in selectors}
    axes = [k for k in varied if k.split(".")[0] not in pinned_groups]
    baselines: dict[tuple, Job] = {}
    for job in jobs:
        if job.row.get("status") == "ok" and latency_ms(job.row) and matches(job, selectors):
            baselines.setdefault(tuple(job.overrides.get(k) for k in axes), job)
    wanted = ", ".join(f"{k}={v}" for k, v in selectors.items())
    if not baselines:
        return {}, (
            f"No ok job matches the baseline ({wanted}), so there is no speedup column: "
            "add it to the sweep or choose another with report.baseline."
        )
    result = {}
    for job in jobs:
        base = baselines.get(tuple(job.overrides.get(k) for k in axes))
        latency = latency_ms(job.row)
        if base is not None and job.row.get("status") == "ok" and latency:
            result[job.row["job"]] = latency_ms(base.row) / latency
    per = f", per {', '.join(axes)}" if axes else ""
    return result, f"Speedup = baseline latency / job latency; baseline: {wanted}{per} (> 1 is faster)."
