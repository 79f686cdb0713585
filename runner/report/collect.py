"""Gather the records of a sweep folder into flat rows, one per job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runner.results import RESULTS_FILE, read_results


def job_dirs(sweep_dir: Path) -> list[Path]:
    """Every job folder of a sweep: those with a record, and Hydra job folders that have none."""
    found = {p.parent for p in Path(sweep_dir).rglob(RESULTS_FILE)}
    found |= {p.parent.parent for p in Path(sweep_dir).rglob(".hydra/overrides.yaml")}
    return sorted(found, key=lambda p: (len(p.parts), int(p.name) if p.name.isdigit() else 0, str(p)))


def _overrides_of(run_dir: Path, record: dict | None) -> list[str]:
    if record and "overrides" in record:
        return list(record["overrides"])
    path = run_dir / ".hydra" / "overrides.yaml"
    if path.exists():
        from omegaconf import OmegaConf

        return list(OmegaConf.load(path))
    return []


def _mean(stats: dict | None) -> float | None:
    return stats.get("mean") if isinstance(stats, dict) else None


def flatten(record: dict) -> dict[str, Any]:
    """The figures a comparison table needs, in fixed units (ms, tokens/s, MiB)."""
    m = record.get("measurements", {})
    model = record.get("model", {})
    forward, generate = m.get("forward", {}), m.get("generate", {})
    gpu = record.get("memory", {}).get("gpu", {})
    row: dict[str, Any] = {
        "model": model.get("name"),
        "weights": model.get("weights"),
        "attn_implementation": model.get("attn_implementation"),
        "footprint_MiB": model.get("footprint_bytes", 0) / 2**20 if model.get("footprint_bytes") else None,
    }
    if forward:
        row["forward_ms"] = _ms(_mean(forward.get("latency")))
        row["forward_p90_ms"] = _ms(forward.get("latency", {}).get("p90"))
        row["forward_tokens_per_s"] = forward.get("throughput", {}).get("tokens_per_s", {}).get("value")
    if generate:
        row["e2e_ms"] = _ms(_mean(generate.get("end_to_end")))
        row["prefill_ms"] = _ms(_mean(generate.get("prefill")))
        row["per_token_ms"] = _ms(_mean(generate.get("per_token")))
        row["decode_tokens_per_s"] = generate.get("throughput", {}).get("decode_tokens_per_s", {}).get("value")
    if gpu:
        row["peak_allocated_MiB"] = max(d["peak_allocated_bytes"] for d in gpu.values()) / 2**20
    elif "cpu_rss_peak_bytes" in record.get("memory", {}):
        row["peak_rss_MiB"] = record["memory"]["cpu_rss_peak_bytes"] / 2**20
    agreement = record.get("agreement", {})
    if "agrees" in agreement:
        row["agrees"] = agreement["agrees"]
        row["max_abs_diff"] = agreement["max_abs_diff"]
    return row


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1e3


def collect(sweep_dir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows for every job (failed and unfinished ones included) and the override keys that vary."""
    jobs = []
    for run_dir in job_dirs(sweep_dir):
        record = read_results(run_dir)
        overrides = dict(o.split("=", 1) for o in _overrides_of(run_dir, record) if "=" in o)
        row: dict[str, Any] = {"job": run_dir.relative_to(sweep_dir).as_posix() or "."}
        if record is None:
            row.update(status="missing", error="no results.json (killed or never started)")
        else:
            row.update(status=record.get("status"), error=(record.get("error") or {}).get("message"))
            row.update(flatten(record))
        jobs.append((overrides, row))
    keys = sorted({k for overrides, _ in jobs for k in overrides})
    varied = [k for k in keys if len({overrides.get(k) for overrides, _ in jobs}) > 1]
    rows = [{**{"job": row["job"]}, **{k: overrides.get(k) for k in varied}, **row} for overrides, row in jobs]
    return rows, varied
