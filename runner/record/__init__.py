"""The typed run record (results.json): `Record.from_dict(json)` to read, `record.to_dict()` to write."""

from runner.record.record import SCHEMA_VERSION, Record
from runner.record.section import UNSET, Section
from runner.record.sections import (
    Agreement,
    Attention,
    Convert,
    Distributed,
    Energy,
    Environment,
    Error,
    LatencyStats,
    Measurements,
    Memory,
    Model,
    Nvml,
    NvmlDevice,
    RankSummary,
    Rate,
    Roofline,
    ScenarioMeasurements,
)

__all__ = [
    "SCHEMA_VERSION",
    "UNSET",
    "Agreement",
    "Attention",
    "Convert",
    "Distributed",
    "Energy",
    "Environment",
    "Error",
    "LatencyStats",
    "Measurements",
    "Memory",
    "Model",
    "Nvml",
    "NvmlDevice",
    "RankSummary",
    "Rate",
    "Record",
    "Roofline",
    "ScenarioMeasurements",
    "Section",
]
