"""Typed schemas for every config group, registered once in Hydra's ConfigStore."""

from hydra.core.config_store import ConfigStore

from runner.config.attention import AttentionConfig
from runner.config.backend import backend_schemas
from runner.config.hardware import HardwareConfig
from runner.config.model import ModelConfig
from runner.config.pipeline import PipelineConfig
from runner.config.quant import QuantConfig
from runner.config.run import RunConfig
from runner.config.scenario import ScenarioConfig

# group -> {schema name -> dataclass}; each YAML option names its schema first in its defaults list
SCHEMAS: dict[str, dict[str, type]] = {
    "model": {"base_model": ModelConfig},
    "quant": {"base_quant": QuantConfig},
    "attention": {"base_attention": AttentionConfig},
    "backend": backend_schemas(),  # one per folder of runner/backends, from its config.py
    "hardware": {"base_hardware": HardwareConfig},
    "scenario": {"base_scenario": ScenarioConfig},
    "pipeline": {"base_pipeline": PipelineConfig},
}


def register_configs() -> None:
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=RunConfig)
    for group, schemas in SCHEMAS.items():
        for name, node in schemas.items():
            cs.store(group=group, name=name, node=node)
