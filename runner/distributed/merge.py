"""One record from the records of a tensor-parallel job's ranks: rank 0's measurements (every rank waits for the
others at each layer, so rank 0's latency is the job's), memory and energy of every rank's GPU."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runner.errors import RunnerError
from runner.measure.derived import energy

# fields of the launching process's record that the ranks' records must not replace
JOB_FIELDS = ("name", "run_dir", "started", "command", "replay", "overrides", "config")


class DistributedError(RunnerError):
    """A rank failed, or torchrun stopped before the ranks wrote their records."""


def rank_file(ranks_dir: Path, rank: int) -> dict[str, Any] | None:
    path = ranks_dir / f"rank{rank}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _rank_summary(rank: int, record: dict[str, Any] | None) -> dict[str, Any]:
    if record is None:
        return {"rank": rank, "status": "missing", "error": "this rank wrote no record: killed, or never started"}
    summary = {k: record.get(k) for k in ("status", "device", "duration_s", "memory")}
    summary["shard"] = (record.get("model") or {}).get("tensor_parallel")
    if record.get("error"):
        summary["error"] = f"{record['error']['type']}: {record['error']['message']}"
    return {"rank": rank, **summary}


def merge_memory(ranks: list[dict[str, Any] | None]) -> dict[str, Any]:
    """Rank 0's CPU figures summed over the ranks' processes; every rank's GPU, each device named once."""
    memories = [r.get("memory") or {} for r in ranks if r]
    merged = dict(memories[0]) if memories else {}
    if all("cpu_rss_peak_bytes" in m for m in memories) and memories:
        merged["cpu_rss_peak_bytes"] = sum(m["cpu_rss_peak_bytes"] for m in memories)
        merged["cpu_rss_peak_scope"] = f"{merged.get('cpu_rss_peak_scope')}, summed over {len(memories)} ranks"
    gpus = {device: figures for m in memories for device, figures in (m.get("gpu") or {}).items()}
    if gpus:
        merged["gpu"] = dict(sorted(gpus.items()))
    nvml = [m["nvml"] for m in memories if (m.get("nvml") or {}).get("available")]
    if nvml:
        devices = {device: figures for n in nvml for device, figures in n["devices"].items()}
        merged["nvml"] = {**nvml[0], "devices": dict(sorted(devices.items()))}
    return merged


def merge_ranks(job: dict[str, Any], ranks: list[dict[str, Any] | None], process_group: str) -> dict[str, Any]:
    """The job's record: rank 0's (or the first rank's that wrote one), with every rank's memory, and the error of
    the first rank that failed (a rank that wrote nothing was usually stopped by torchrun after another failed)."""
    base = next(record for record in ranks if record is not None)
    merged = {**base, **{k: job[k] for k in JOB_FIELDS if k in job}}
    summaries = [_rank_summary(rank, record) for rank, record in enumerate(ranks)]
    merged["distributed"] = {
        "kind": "tensor_parallel",
        "launcher": "torchrun",
        "world_size": len(ranks),
        "process_group": process_group,
        "latency_from": "rank 0",
        "ranks": summaries,
    }
    merged["memory"] = merge_memory(ranks)
    failed = [s for s in summaries if s["status"] == "failed"] or [s for s in summaries if s["status"] != "ok"]
    if not failed:
        if (joules := energy(merged)) is not None:
            merged["energy"] = joules  # over every rank's GPU
        return merged
    first = failed[0]
    record = ranks[first["rank"]]
    error = dict((record or {}).get("error") or {"type": DistributedError.__name__, "message": first["error"]})
    error["message"] = f"rank {first['rank']}: {error.get('message')}"
    error.setdefault("traceback", "")
    merged.update(status="failed", error=error)
    return merged
