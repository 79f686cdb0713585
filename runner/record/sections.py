"""One dataclass per section of results.json. Fields are the figures the console, the sweep report, the derived
figures and the rank merge read; whatever else a writer puts in a section travels in its `extra`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runner.record.section import UNSET, Section


@dataclass
class LatencyStats(Section):
    """Summary of one timed phase (runner/measure/stats.py), in `unit` (seconds)."""

    count: int = UNSET
    mean: float = UNSET
    p50: float = UNSET
    p90: float = UNSET
    p99: float = UNSET
    stdev: float = UNSET
    min: float = UNSET
    max: float = UNSET
    unit: str = UNSET


@dataclass
class Rate(Section):
    value: float | None = UNSET
    unit: str = UNSET


@dataclass
class ScenarioMeasurements(Section):
    """One scenario's timings: phases (forward: latency; generate: end_to_end, prefill, decode, per_token, ...)
    each a LatencyStats, and throughputs by name. A phase is any entry with a mean, as the scenarios write them."""

    throughput: dict[str, Rate] = UNSET
    per_token_count_per_call: list[int] = UNSET

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ScenarioMeasurements:
        section = super().from_dict(data)
        section.extra = {
            k: LatencyStats.from_dict(v) if isinstance(v, dict) and "mean" in v else v for k, v in section.extra.items()
        }
        return section

    def phases(self) -> dict[str, LatencyStats]:
        return {k: v for k, v in self.extra.items() if isinstance(v, LatencyStats)}

    def phase(self, name: str) -> LatencyStats | None:
        return self.phases().get(name)

    def rate(self, name: str) -> float | None:
        rate = (self.throughput or {}).get(name)
        return rate.value if rate else None


@dataclass
class TokenCounts(Section):
    real_tokens: int = UNSET
    padded_tokens: int = UNSET
    total_tokens: int = UNSET
    text_tokens: int = UNSET  # the inputs of a run given scenario.text: its length, and whether it was cut
    text_truncated: bool = UNSET
    new_tokens_per_row: int = UNSET  # measurements.tokens of a generate run


@dataclass
class Measurements(Section):
    forward: ScenarioMeasurements | None = UNSET
    generate: ScenarioMeasurements | None = UNSET
    tokens: TokenCounts = UNSET

    def scenarios(self) -> dict[str, ScenarioMeasurements]:
        return {name: s for name in ("forward", "generate") if (s := getattr(self, name)) is not None}


@dataclass
class GpuMemory(Section):
    peak_allocated_bytes: int = UNSET
    peak_reserved_bytes: int = UNSET


@dataclass
class NvmlDevice(Section):
    nvml_index: int | None = UNSET  # the host-wide index, as `other_gpus` names a GPU ("nvml:<index>")
    process_used_peak_bytes: int | None = UNSET
    device_used_peak_bytes: int = UNSET
    sm_clock_mhz: dict[str, Any] | None = UNSET
    mem_clock_mhz: dict[str, Any] | None = UNSET  # mean, min, max, samples; None: the driver does not report it
    utilization_percent: dict[str, Any] | None = UNSET  # share of each sampling period in which a kernel ran
    energy_joules: float | None = UNSET


@dataclass
class Nvml(Section):
    available: bool = UNSET
    reason: str = UNSET
    devices: dict[str, NvmlDevice] = UNSET
    # the host's GPUs this job did not use: "nvml:<index>" -> utilization_percent_mean/max, compute_processes_max
    other_gpus: dict[str, dict[str, Any]] = UNSET


@dataclass
class Memory(Section):
    cpu_rss_peak_bytes: int = UNSET
    cpu_rss_peak_scope: str = UNSET
    gpu: dict[str, GpuMemory] = UNSET
    nvml: Nvml | None = UNSET
    # CPU cores busy over the measured calls: cpus, busy_cores, this_process_cores, other_cores (host_load.py)
    host: dict[str, Any] = UNSET


@dataclass
class PlacementDevice(Section):
    modules: int = UNSET
    parameter_bytes: int = UNSET


@dataclass
class Placement(Section):
    device_map: Any = UNSET
    devices: dict[str, PlacementDevice] = UNSET


@dataclass
class Model(Section):
    """What loaded, written by the load stage alone. `quantization` stays a dict: its shape belongs to the
    quantization plugins. For ONNX Runtime the measured model is the session its load opens: its graph's size
    and the session's load time (records written at 5a403aa..cf6b52c have them in `convert.onnx` only: see
    Record.footprint_bytes)."""

    name: str = UNSET
    weights: str = UNSET
    weights_source: str | None = UNSET
    weights_reason: str | None = UNSET
    dtype: str = UNSET
    footprint_bytes: int = UNSET
    load_time_s: float = UNSET
    attn_implementation: str = UNSET
    placement: Placement = UNSET
    quantization: dict[str, Any] | None = UNSET
    tensor_parallel: dict[str, Any] | None = UNSET


@dataclass
class Attention(Section):
    """What the attention probe saw run (runner/attention/probe.py)."""

    implementation: str | None = UNSET
    sdpa_kernels: list[str] = UNSET


@dataclass
class Convert(Section):
    """Written by the convert stage alone (runner/stages/convert.py), from its conversions and the backend's
    account of itself (Backend.convert_record); `compile` is the backend's account of torch.compile's first call."""

    applied: list[str] = UNSET
    bettertransformer: dict[str, Any] | None = UNSET
    fused_attention: dict[str, Any] | None = UNSET  # runner/convert/fused_attention.py (Falcon, Bloom)
    onnx: dict[str, Any] | None = UNSET
    compile: dict[str, Any] | None = UNSET


@dataclass
class Warmup(Section):
    runs: int = UNSET


@dataclass
class Save(Section):
    saved: bool = UNSET
    directory: str = UNSET


@dataclass
class Predictions(Section):
    """One forward pass's answer for a classifier or an encoder (runner/predictions.py); its rows in `extra`."""

    task: str = UNSET
    note: str = UNSET


@dataclass
class Quality(Section):
    """Output quality against the reference model (runner/stages/quality.py); absent figures stay UNSET."""

    skipped: str = UNSET
    kind: str = UNSET
    perplexity: float = UNSET
    reference_perplexity: float = UNSET
    perplexity_increase: float = UNSET
    perplexity_increase_relative: float = UNSET
    top1_agreement: float = UNSET
    kl_divergence: float = UNSET
    cosine_similarity_mean: float = UNSET
    cosine_similarity_min: float = UNSET
    label_agreement: float = UNSET
    sentences: int = UNSET
    text: dict[str, Any] = UNSET
    greedy: dict[str, Any] = UNSET
    check: str = UNSET
    passed: bool = UNSET


@dataclass
class RooflineForward(Section):
    achieved_tflops: float | None = UNSET
    share_of_peak: float | None = UNSET


@dataclass
class RooflineDecode(Section):
    achieved_gbs: float | None = UNSET
    share_of_bandwidth: float | None = UNSET


@dataclass
class Roofline(Section):
    forward: RooflineForward | None = UNSET
    decode: RooflineDecode | None = UNSET


@dataclass
class Agreement(Section):
    """Outputs against the reference model; `agrees` is absent when the comparison was skipped."""

    agrees: bool = UNSET
    max_abs_diff: float = UNSET
    relative_max_diff: float = UNSET
    tolerance: float = UNSET
    top1_agreement: float | None = UNSET
    kl_divergence: float | None = UNSET
    skipped: str = UNSET


@dataclass
class Environment(Section):
    gpus: list[dict[str, Any]] = UNSET
    packages: dict[str, str] = UNSET


@dataclass
class Energy(Section):
    available: bool = UNSET
    reason: str = UNSET
    source: str = UNSET
    joules: float = UNSET
    tokens: int = UNSET
    joules_per_token: float | None = UNSET
    unit: str = UNSET
    note: str = UNSET


@dataclass
class Error(Section):
    type: str = UNSET
    message: str = UNSET
    traceback: str = UNSET

    def line(self) -> str:
        return f"{self.type}: {self.message}"


@dataclass
class RankSummary(Section):
    rank: int = UNSET
    status: str = UNSET
    device: str | None = UNSET
    duration_s: float | None = UNSET
    memory: Memory | None = UNSET
    shard: dict[str, Any] | None = UNSET
    error: str = UNSET


@dataclass
class Distributed(Section):
    kind: str = UNSET
    launcher: str = UNSET
    world_size: int = UNSET
    process_group: str = UNSET
    latency_from: str = UNSET
    ranks: list[RankSummary] = UNSET
