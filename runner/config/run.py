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
    name: str = "run"  # a label for the run in reports
