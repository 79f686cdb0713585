"""The short results table printed at the end of a run."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from runner.record import LatencyStats, Record

MiB = 1024**2


def _ms(stats: LatencyStats) -> list[str]:
    return [f"{getattr(stats, k) * 1e3:.3f}" for k in ("mean", "p50", "p90", "stdev")]


def print_summary(record: Record, console: Console | None = None) -> None:
    console = console or Console(stderr=False)
    model = record.model
    if model:  # absent when the run failed before loading
        console.print(
            f"[bold]{record.name}[/]: model={model.name} ({model.weights} weights, "
            f"{model.dtype}, attn={model.attn_implementation}) on {record.device}"
        )
    else:
        console.print(f"[bold]{record.name}[/]")
    if not record.ok:
        console.print(f"[red]failed[/]: {record.error.message if record.error else None}")
        return
    scenarios = record.measurements.scenarios() if record.measurements else {}
    table = Table("phase", "mean ms", "p50 ms", "p90 ms", "stdev ms", "count")
    for scenario, measured in scenarios.items():
        for phase, stats in measured.phases().items():
            table.add_row(f"{scenario}.{phase}", *_ms(stats), str(stats.count))
    console.print(table)
    for measured in scenarios.values():
        for key, rate in (measured.throughput or {}).items():
            console.print(f"  {key}: {rate.value:.1f} {rate.unit}")
    memory = record.memory
    for device, stats in ((memory and memory.gpu) or {}).items():
        console.print(
            f"  peak memory {device}: {stats.peak_allocated_bytes / MiB:.1f} MiB allocated, "
            f"{stats.peak_reserved_bytes / MiB:.1f} MiB reserved"
        )
    nvml = memory.nvml if memory else None
    for device, stats in ((nvml and nvml.devices) or {}).items():
        own = stats.process_used_peak_bytes
        console.print(
            f"  NVML {device}: {'-' if own is None else f'{own / MiB:.0f}'} MiB this process, "
            f"{stats.device_used_peak_bytes / MiB:.0f} MiB used on the device (peaks)"
        )
    if nvml and not nvml.available:
        console.print(f"  NVML: {nvml.reason}")
    energy = record.energy
    if energy and energy.joules_per_token is not None:
        console.print(f"  energy: {energy.joules:.2f} J, {energy.joules_per_token:.4g} {energy.unit}")
    if memory and memory.has("cpu_rss_peak_bytes"):
        console.print(
            f"  peak RSS ({memory.cpu_rss_peak_scope or 'process lifetime'}): "
            f"{memory.cpu_rss_peak_bytes / MiB:.0f} MiB; "
            f"model footprint {((model and model.footprint_bytes) or 0) / MiB:.1f} MiB; "
            f"load {((model and model.load_time_s) or 0):.2f} s"
        )
    agreement = record.agreement
    if agreement and agreement.has("agrees"):
        verdict = "agrees" if agreement.agrees else "[red]DISAGREES[/]"
        console.print(
            f"  vs reference: {verdict} (max abs diff {agreement.max_abs_diff:.3g}, "
            f"relative {agreement.relative_max_diff:.3g}, tolerance {agreement.tolerance:.3g})"
        )
    console.print(f"  record: {record.run_dir}/results.json")
