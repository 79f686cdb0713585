"""The composed run config: one field per group, plus stage settings and run-level switches."""

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from runner.config.attention import AttentionConfig
from runner.config.hardware import HardwareConfig
from runner.config.model import ModelConfig
from runner.config.pipeline import ConvertConfig, PipelineConfig, SaveConfig
from runner.config.quant import QuantConfig
from runner.config.scenario import ScenarioConfig


@dataclass
class CompareConfig:
    enabled: bool = True  # compare outputs with the plain model (eager, unquantized, unconverted)


@dataclass
class QualityConfig:
    # on trained weights, against the reference model (runner/stages/quality.py); skipped with the reason on random
    # weights, so it costs nothing on the random-weight presets
    enabled: bool = True
    text_file: str | None = None  # a UTF-8 file to score instead of the default text (pydoc_data.topics)
    max_tokens: int | None = 4096  # tokens of the text scored, in chunks of scenario.sequence_length (None: all)
    new_tokens: int = 16  # greedy continuation length of each fixed prompt (0: none)
    cache_reference: bool = True  # reuse the reference's figures across runs (RUNNER_CACHE/quality-reference)


@dataclass
class ReportConfig:
    # the job every other job's speedup is measured against, as override-style selectors matched against each
    # job's composed config ("attention=eager" matches attention.name; "scenario.batch_size=1" a value)
    baseline: list[str] = field(default_factory=lambda: ["attention=eager", "quant=none"])
    plots: bool = True  # PNG charts next to summary.csv / summary.md
    # the quality budget of the verdict (fastest / smallest job within it): relative perplexity increase over the
    # reference for causal LMs, least pooled cosine similarity for encoders
    max_perplexity_increase: float = 0.02
    min_cosine_similarity: float = 0.99


@dataclass
class RooflineConfig:
    # ceilings for the roofline section; None takes the datasheet figures of a known GPU (runner/roofline/gpus.py)
    peak_tflops: float | None = None  # dense bf16 TFLOP/s
    bandwidth_gbs: float | None = None  # memory bandwidth, GB/s


@dataclass
class RunConfig:
    model: ModelConfig = MISSING
    quant: QuantConfig = MISSING
    attention: AttentionConfig = MISSING
    backend: Any = MISSING  # each backend option has its own schema (runner/backends/<name>/config.py)
    hardware: HardwareConfig = MISSING
    scenario: ScenarioConfig = MISSING
    pipeline: PipelineConfig = MISSING
    convert: ConvertConfig = field(default_factory=ConvertConfig)
    save: SaveConfig = field(default_factory=SaveConfig)
    compare: CompareConfig = field(default_factory=CompareConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    name: str = "run"  # a label for the run in reports
    # how a job runs: auto = its own process in a multirun (or when timeout_s is set), in-process otherwise;
    # true / false force it. A job in its own process cannot take the others down when it crashes or hangs.
    isolate: str = "auto"
    timeout_s: float | None = None  # an isolated job running longer is killed and recorded as timed out
    resume: bool = False  # multirun into an existing hydra.sweep.dir: skip jobs that already have an ok result
    overwrite: bool = False  # write into an existing hydra.run.dir / hydra.sweep.dir, which is refused otherwise
    report: ReportConfig = field(default_factory=ReportConfig)
    roofline: RooflineConfig = field(default_factory=RooflineConfig)
