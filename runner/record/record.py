"""The whole run record, as results.json holds it: run-level fields, then one typed section per stage or
instrument. Sections it does not declare (a new stage's, say `quality`) pass through as dicts."""

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
    Roofline,
    TokenCounts,
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
    environment: Environment = UNSET
    device: str = UNSET
    stages: list[str] = UNSET
    model: Model = UNSET
    inputs: TokenCounts = UNSET
    convert: Convert = UNSET
    measurements: Measurements = UNSET
    memory: Memory = UNSET
    roofline: Roofline = UNSET
    agreement: Agreement = UNSET
    attention: Attention = UNSET
    energy: Energy = UNSET
    distributed: Distributed = UNSET
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
        """A section as results.json holds it: how to read one the record does not type (a new stage's)."""
        return self.to_dict().get(name, default)

    def scenario_config(self) -> dict[str, Any]:
        return (self.config or {}).get("scenario") or {}
