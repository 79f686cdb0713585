"""The short results table printed at the end of a run."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from runner.record import LatencyStats, Quality, Record

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
            f"model footprint {(record.footprint_bytes() or 0) / MiB:.1f} MiB; "
            f"load {(record.load_time_s() or 0):.2f} s"
        )
    agreement = record.agreement
    if agreement and agreement.has("agrees"):
        verdict = "agrees" if agreement.agrees else "[red]DISAGREES[/]"
        console.print(
            f"  vs reference: {verdict} (max abs diff {agreement.max_abs_diff:.3g}, "
            f"relative {agreement.relative_max_diff:.3g}, tolerance {agreement.tolerance:.3g})"
        )
    quality_line(record.quality or Quality(), console)
    console.print(f"  record: {record.run_dir}/results.json")


def quality_line(quality: Quality, console: Console) -> None:
    """Perplexity next to the reference's and the difference; cosine / labels for encoders."""
    if quality.has("skipped") or not quality.has("passed"):
        return
    verdict = "within" if quality.passed else "[red]OUTSIDE[/]"
    if quality.has("perplexity"):
        text = quality.text
        console.print(
            f"  quality: perplexity {quality.perplexity:.4f}, reference {quality.reference_perplexity:.4f}, "
            f"difference {quality.perplexity_increase:+.4f} ({quality.perplexity_increase_relative:+.2%}); "
            f"top-1 {quality.top1_agreement:.3f}, KL {quality.kl_divergence:.4g} over {text['tokens']} tokens "
            f"of {text['source']}; {verdict} tolerance"
        )
    else:
        labels = f", labels {quality.label_agreement:.3f}" if quality.has("label_agreement") else ""
        console.print(
            f"  quality: pooled cosine mean {quality.cosine_similarity_mean:.5f}, min "
            f"{quality.cosine_similarity_min:.5f}{labels} over {quality.sentences} sentences; {verdict} tolerance"
        )
