"""One record from the records of a tensor-parallel job's ranks: rank 0's measurements (every rank waits for the
others at each layer, so rank 0's latency is the job's), memory and energy of every rank's GPU."""

from __future__ import annotations

import json
from pathlib import Path

from runner.errors import RunnerError
from runner.measure.derived import energy
from runner.record import Distributed, Error, Memory, Nvml, RankSummary, Record

# fields of the launching process's record that the ranks' records must not replace
JOB_FIELDS = ("name", "run_dir", "started", "command", "replay", "overrides", "config")


class DistributedError(RunnerError):
    """A rank failed, or torchrun stopped before the ranks wrote their records."""


def rank_file(ranks_dir: Path, rank: int) -> Record | None:
    path = ranks_dir / f"rank{rank}.json"
    return Record.from_dict(json.loads(path.read_text())) if path.exists() else None


def _rank_summary(rank: int, record: Record | None) -> RankSummary:
    if record is None:
        return RankSummary(rank=rank, status="missing", error="this rank wrote no record: killed, or never started")
    summary = RankSummary(
        rank=rank,
        status=record.status,
        device=record.device,
        duration_s=record.duration_s,
        memory=record.memory,
        shard=record.model.tensor_parallel if record.model else None,
    )
    if record.error:
        summary.error = record.error.line()
    return summary


def merge_memory(ranks: list[Record | None]) -> Memory:
    """Rank 0's CPU figures summed over the ranks' processes; every rank's GPU, each device named once; the host's
    other processes and GPUs without the job's own ranks."""
    memories = [r.memory or Memory() for r in ranks if r]
    merged = Memory.from_dict(memories[0].to_dict()) if memories else Memory()
    if memories and all(m.has("cpu_rss_peak_bytes") for m in memories):
        merged.cpu_rss_peak_bytes = sum(m.cpu_rss_peak_bytes for m in memories)
        merged.cpu_rss_peak_scope = f"{merged.cpu_rss_peak_scope}, summed over {len(memories)} ranks"
    gpus = {device: figures for m in memories for device, figures in (m.gpu or {}).items()}
    if gpus:
        merged.gpu = dict(sorted(gpus.items()))
    nvml = [m.nvml for m in memories if m.nvml and m.nvml.available]
    if nvml:
        devices = {device: figures for n in nvml for device, figures in n.devices.items()}
        merged.nvml = Nvml.from_dict({**nvml[0].to_dict(), "devices": {}})
        merged.nvml.devices = dict(sorted(devices.items()))
        if merged.nvml.has("other_gpus"):  # the other ranks' GPUs are the job's own, not a neighbour's
            ours = {f"nvml:{d.nvml_index}" for d in devices.values() if d.has("nvml_index")}
            merged.nvml.other_gpus = {k: v for k, v in merged.nvml.other_gpus.items() if k not in ours}
    hosts = [m.host for m in memories if m.has("host") and m.host]
    if len(hosts) == len(memories) > 1:  # the ranks' processes are the job's own CPU use
        ranks = sum(h["this_process_cores"] for h in hosts)
        merged.host = {
            **hosts[0],
            "this_process_cores": round(ranks, 2),
            "other_cores": round(max(0.0, hosts[0]["busy_cores"] - ranks), 2),
            "summed_over_ranks": len(hosts),
        }
    return merged


def merge_ranks(job: Record, ranks: list[Record | None], process_group: str) -> Record:
    """The job's record: rank 0's (or the first rank's that wrote one), with every rank's memory, and the error of
    the first rank that failed (a rank that wrote nothing was usually stopped by torchrun after another failed)."""
    base = next(record for record in ranks if record is not None).to_dict()
    own = job.to_dict()
    merged = Record.from_dict({**base, **{k: own[k] for k in JOB_FIELDS if k in own}})
    summaries = [_rank_summary(rank, record) for rank, record in enumerate(ranks)]
    merged.distributed = Distributed(
        kind="tensor_parallel",
        launcher="torchrun",
        world_size=len(ranks),
        process_group=process_group,
        latency_from="rank 0",
        ranks=summaries,
    )
    merged.memory = merge_memory(ranks)
    failed = [s for s in summaries if s.status == "failed"] or [s for s in summaries if s.status != "ok"]
    if not failed:
        if (joules := energy(merged)) is not None:
            merged.energy = joules  # over every rank's GPU
        return merged
    first = failed[0]
    record = ranks[first.rank]
    error = Error.from_dict(record.error.to_dict()) if record and record.error else None
    error = error or Error(type=DistributedError.__name__, message=first.error)
    error.message = f"rank {first.rank}: {error.message}"
    if not error.has("traceback"):
        error.traceback = ""
    merged.status, merged.error = "failed", error
    return merged
