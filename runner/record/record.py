"""The whole run record, as results.json holds it: run-level fields, then one typed section per stage or
instrument, each written by its owner alone (the owners are named below). Sections it does not declare (a
plugin's own) pass through as dicts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runner.record.section import UNSET, Section
from runner.record.sections import (
    Agreement,
    Attention,
    Convert,
    Distributed,
    Energy,
    Environment,
    Error,
    Measurements,
    Memory,
    Model,
    Predictions,
    Quality,
    Roofline,
    Save,
    TokenCounts,
    Warmup,
)

# 1: the first typed record. Records without the field were written before it and load as version 0.
SCHEMA_VERSION = 1


@dataclass
class Record(Section):
    schema_version: int = UNSET
    status: str = UNSET  # running, ok, failed
    name: str | None = UNSET
    run_dir: str = UNSET
    started: str = UNSET
    command: str = UNSET
    replay: str = UNSET
    overrides: list[str] = UNSET
    config: dict[str, Any] = UNSET  # the composed config as a plain dict
    environment: Environment = UNSET  # runner/execute.py
    device: str = UNSET  # runner/execute.py
    stages: list[str] = UNSET  # runner/pipeline.py
    model: Model = UNSET  # the load stage
    inputs: TokenCounts = UNSET  # the load stage
    warnings: list[str] = UNSET  # the load stage
    convert: Convert = UNSET  # the convert stage
    warmup: Warmup = UNSET  # the warmup stage
    measurements: Measurements = UNSET  # the infer stage (the scenario's measure)
    memory: Memory = UNSET  # the infer stage (MemoryTracker)
    roofline: Roofline = UNSET  # the infer stage (runner/roofline)
    predictions: Predictions = UNSET  # the infer stage (runner/predictions.py)
    attention: Attention = UNSET  # the verify stage
    agreement: Agreement = UNSET  # the compare stage
    quality: Quality = UNSET  # the quality stage
    save: Save = UNSET  # the save stage
    energy: Energy = UNSET  # runner/measure/derived.py
    distributed: Distributed = UNSET  # runner/distributed/merge.py
    error: Error | None = UNSET
    exitcode: int | None = UNSET  # a job in its own process that could not write its record
    exit_note: str = UNSET  # its process (or torchrun) exited non-zero after the record was written
    duration_s: float = UNSET
    finished: str = UNSET

    @property
    def version(self) -> int:
        return self.schema_version or 0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def get(self, name: str, default: Any = None) -> Any:
        """One section as results.json holds it (a plain dict): how to read one the record does not type."""
        if name in self.extra:
            return self.extra[name]
        if name in type(self).__dataclass_fields__ and self.has(name):
            value = getattr(self, name)
            return value.to_dict() if isinstance(value, Section) else value
        return default

    def footprint_bytes(self) -> int | None:
        """The size of the model the run measured (`model.footprint_bytes`; ONNX Runtime: its graph). Records an
        ONNX Runtime run wrote at 5a403aa..cf6b52c have it in `convert.onnx.bytes` only."""
        if self.model is not None and self.model.footprint_bytes is not None:
            return self.model.footprint_bytes
        return ((self.convert and self.convert.onnx) or {}).get("bytes")

    def load_time_s(self) -> float | None:
        """How long loading the measured model took (ONNX Runtime: opening its session; in records of
        5a403aa..cf6b52c, `convert.onnx.session_load_time_s`)."""
        if self.model is not None and self.model.load_time_s is not None:
            return self.model.load_time_s
        return ((self.convert and self.convert.onnx) or {}).get("session_load_time_s")

    def scenario_config(self) -> dict[str, Any]:
        return (self.config or {}).get("scenario") or {}
