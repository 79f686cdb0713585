"""Gather the records of a sweep folder into flat rows, one per job."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.record import Attention, Convert, Environment, Memory, Record, Roofline, ScenarioMeasurements
from runner.record.io import read_record
from runner.record.sections import Measurements, Model
from runner.report.quality_columns import quality_columns
from runner.results import RESULTS_FILE, RUN_SWITCHES, TRIALS_DIR

MiB = 2**20


@dataclass
class Job:
    dir: Path
    overrides: dict[str, str]  # key -> value, as given on the command line / by the sweeper
    record: Record | None  # None: no results.json (killed before the parent could record it)
    row: dict[str, Any]  # the flat figures of summary.csv


def job_dirs(sweep_dir: Path) -> list[Path]:
    """Every job folder of a sweep: those with a record, and Hydra job folders that have none (a job's tuning
    trials are part of that job, not jobs)."""
    found = {p.parent for p in Path(sweep_dir).rglob(RESULTS_FILE)}
    found |= {p.parent.parent for p in Path(sweep_dir).rglob(".hydra/overrides.yaml")}
    found = {p for p in found if TRIALS_DIR not in p.relative_to(Path(sweep_dir)).parts}
    return sorted(found, key=lambda p: (len(p.parts), int(p.name) if p.name.isdigit() else 0, str(p)))


def _overrides_of(run_dir: Path, record: Record | None) -> list[str]:
    if record and record.has("overrides"):
        return list(record.overrides)
    path = run_dir / ".hydra" / "overrides.yaml"
    if path.exists():
        from omegaconf import OmegaConf

        return list(OmegaConf.load(path))
    return []


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1e3


def _mean_ms(section: ScenarioMeasurements, phase: str) -> float | None:
    stats = section.phase(phase)
    return _ms(stats.mean) if stats else None


def _mib(value: int | None) -> float | None:
    return None if value is None else value / MiB


def _lowest_mean(devices, field: str) -> float | None:
    """The lowest mean of a sampled NVML figure (clock, utilization) over the job's GPUs: the slowest GPU sets the
    pace of a split model. None where no GPU's record has it (older records, a driver that does not report it)."""
    means = [summary["mean"] for device in devices if (summary := getattr(device, field))]
    return min(means) if means else None


def flatten(record: Record) -> dict[str, Any]:
    """The figures a comparison table needs, in fixed units named in the column (ms, tokens/s, MiB, J)."""
    m = record.measurements or Measurements()
    model = record.model or Model()
    forward, generate = m.forward, m.generate
    memory = record.memory or Memory()
    convert = record.convert or Convert()
    row: dict[str, Any] = {
        "model": model.name,
        "weights": model.weights,
        "attn_implementation": model.attn_implementation,
        "ran": _ran(record.attention or Attention()),
        "conversions": ", ".join(convert.applied or []) or None,
        "footprint_MiB": _mib(record.footprint_bytes()),
    }
    row.update(_quantization(model.quantization or {}))
    devices = (model.placement.devices if model.placement else None) or {}
    if len(devices) > 1:  # a split model: modules and parameter MiB per device
        row["placement"] = ", ".join(
            f"{d}: {v.modules} ({_mib(v.parameter_bytes):.0f} MiB)" for d, v in devices.items()
        )
    if convert.bettertransformer:
        row["bettertransformer"] = _bettertransformer(convert.bettertransformer)
    if forward:
        row["forward_ms"] = _mean_ms(forward, "latency")
        latency = forward.phase("latency")
        row["forward_p90_ms"] = _ms(latency.p90 if latency else None)
        row["forward_tokens_per_s"] = forward.rate("tokens_per_s")
        row["forward_samples_per_s"] = forward.rate("samples_per_s")
    if generate:
        row["e2e_ms"] = _mean_ms(generate, "end_to_end")
        row["prefill_ms"] = _mean_ms(generate, "prefill")
        row["per_token_ms"] = _mean_ms(generate, "per_token")
        row["decode_tokens_per_s"] = generate.rate("decode_tokens_per_s")
        row["prefill_tokens_per_s"] = generate.rate("prefill_tokens_per_s")
    if memory.gpu:
        row["peak_allocated_MiB"] = _mib(max(d.peak_allocated_bytes for d in memory.gpu.values()))
        row["peak_reserved_MiB"] = _mib(max(d.peak_reserved_bytes for d in memory.gpu.values()))
    nvml = memory.nvml
    if nvml and nvml.available:
        nvml_devices = nvml.devices.values()
        own = [d.process_used_peak_bytes for d in nvml_devices if d.process_used_peak_bytes is not None]
        row["nvml_process_MiB"] = _mib(sum(own)) if own else None
        row["nvml_device_used_MiB"] = _mib(sum(d.device_used_peak_bytes for d in nvml_devices))
        row["sm_clock_MHz"] = _lowest_mean(nvml_devices, "sm_clock_mhz")
        row["mem_clock_MHz"] = _lowest_mean(nvml_devices, "mem_clock_mhz")
        busy = _lowest_mean(nvml_devices, "utilization_percent")
        row["gpu_busy_%"] = None if busy is None else round(busy, 1)  # low: the GPU waited for the host
        other_gpus = nvml.other_gpus if nvml.has("other_gpus") else {}
        others = [g.get("utilization_percent_mean") for g in other_gpus.values()]
        others = [u for u in others if u is not None]
        if others:  # a study on another GPU of the host shares its cores with this job
            row["other_gpus_busy_%"] = round(max(others), 1)
    if memory.has("cpu_rss_peak_bytes"):
        row["peak_rss_MiB"] = _mib(memory.cpu_rss_peak_bytes)
    if memory.has("host") and memory.host:
        row["host_other_cores"] = memory.host.get("other_cores")  # CPU cores other processes kept busy meanwhile
    energy = record.energy
    if energy and energy.joules_per_token is not None:
        row["energy_J_per_token"] = energy.joules_per_token
    agreement = record.agreement
    if agreement and agreement.has("agrees"):
        row["agrees"] = agreement.agrees
        row["max_abs_diff"] = agreement.max_abs_diff
        for key in ("relative_max_diff", "tolerance", "top1_agreement", "kl_divergence"):
            row[key] = getattr(agreement, key)
    row.update(quality_columns(record.quality))
    if onnx := convert.onnx:
        row["onnx_export"] = onnx.get("cache")
        row["onnx_export_s"] = onnx.get("export_time_s")
    row.update(_roofline(record.roofline))
    row.update(_environment(record.environment))
    if record.has("duration_s"):
        row["duration_s"] = record.duration_s
    return row


def _environment(env: Environment | None) -> dict[str, Any]:
    """The card and the versions behind the figures (said once above the table when the sweep shares them)."""
    if not env or not env.to_dict():
        return {}
    names = [gpu.get("name") for gpu in env.gpus or []]
    gpu = (f"{len(names)} x {names[0]}" if len(names) > 1 else names[0]) if names else "none"
    packages = env.packages or {}
    return {"host_gpus": gpu, "torch": packages.get("torch"), "transformers": packages.get("transformers")}


def _ran(attention: Attention) -> str | None:
    """What the attention probe saw run: the implementation, and for SDPA the kernel(s)."""
    if not attention.implementation:
        return None
    kernels = attention.sdpa_kernels or []
    return f"{attention.implementation} ({', '.join(kernels)})" if kernels else attention.implementation


def _bettertransformer(section: dict) -> str:
    """The conversion's kind, whether padding was skipped, and whether reverse restored the state dict."""
    parts = [section.get("kind", "?")]
    if section.get("padding_skipped") is not None:
        parts.append("padding skipped" if section["padding_skipped"] else "padding computed")
    restored = (section.get("reversed") or {}).get("state_dict_restored")
    if restored is not None:
        parts.append("reversed" if restored else "NOT reversed")
    return ", ".join(parts)


def _quantization(section: dict) -> dict[str, Any]:
    if not section:
        return {}
    return {
        "quantized_layers": ", ".join(f"{n} {scheme}" for scheme, n in section.get("by_scheme", {}).items()) or None,
        "footprint_ratio": section.get("footprint_ratio"),
    }


def _roofline(section: Roofline | None) -> dict[str, Any]:
    """How close the job came to the hardware: achieved TFLOP/s and share of the peak for a forward pass,
    achieved GB/s and share of the memory bandwidth for decoding (runner/roofline)."""
    row: dict[str, Any] = {}
    if section and (forward := section.forward):
        row["forward_TFLOPs"] = forward.achieved_tflops
        row["forward_share_of_peak"] = forward.share_of_peak
    if section and (decode := section.decode):
        row["decode_GBs"] = decode.achieved_gbs
        row["decode_share_of_bandwidth"] = decode.share_of_bandwidth
    return row


def latency_ms(row: dict[str, Any]) -> float | None:
    """The job's headline latency: a forward pass, or a whole generate call."""
    return row.get("forward_ms") if row.get("forward_ms") is not None else row.get("e2e_ms")


def _error(record: Record) -> str | None:
    return record.error.line() if record.error else None


def collect_jobs(sweep_dir: Path) -> tuple[list[Job], list[str]]:
    """Every job (failed and unfinished ones included) and the override keys that vary across them."""
    jobs = []
    for run_dir in job_dirs(sweep_dir):
        record = read_record(run_dir)
        overrides = dict(o.lstrip("+~").split("=", 1) for o in _overrides_of(run_dir, record) if "=" in o)
        row: dict[str, Any] = {"job": run_dir.relative_to(sweep_dir).as_posix() or "."}
        if record is None:
            row.update(status="missing", error="no results.json: the job was killed or never started")
        else:
            row.update(status=record.status, error=_error(record))
            row.update(flatten(record))
        jobs.append(Job(run_dir, overrides, record, row))
    keys = sorted({k for job in jobs for k in job.overrides})
    # run-level switches (resume=true on a rerun) are not what the sweep compares
    keys = [k for k in keys if k not in RUN_SWITCHES]
    varied = [k for k in keys if len({job.overrides.get(k) for job in jobs}) > 1]
    for job in jobs:
        job.row = {"job": job.row["job"], **{k: job.overrides.get(k) for k in varied}, **job.row}
    return jobs, varied
