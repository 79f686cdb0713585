"""A job as every layer that runs one sees it: the config typed once at the door, the same config as plain data
for the record, where its record goes and the overrides that made it. Crosses process boundaries by pickling."""

from __future__ import annotations

import shlex
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runner.config.load import to_container, typed_at_the_door
from runner.config.run import RunConfig
from runner.record import SCHEMA_VERSION, Error, Record


@dataclass
class Job:
    cfg: RunConfig | None  # None: the config did not pass the checks; `config_error` says why
    config: dict[str, Any]  # the composed config as plain data: what the record keeps, never read to run
    run_dir: Path
    overrides: list[str]
    config_error: BaseException | None = None

    @classmethod
    def at_the_door(cls, cfg: Any, run_dir: Path, overrides: list[str]) -> Job:
        """Type and validate the composed config (Hydra's DictConfig, or a saved run's dict) once."""
        from runner.errors import ConfigError

        config = to_container(cfg)
        try:
            return cls(typed_at_the_door(config), config, Path(run_dir), list(overrides))
        except ConfigError as error:
            return cls(None, config, Path(run_dir), list(overrides), config_error=error)

    def for_rank(self, rank: int) -> Job:
        """The same job as one tensor-parallel rank sees it: its own folder under ranks/."""
        return Job(self.cfg, self.config, self.run_dir / "ranks" / f"rank{rank}", self.overrides)

    def new_record(self) -> Record:
        return Record(
            schema_version=SCHEMA_VERSION,
            status="running",
            name=self.config.get("name"),
            run_dir=str(self.run_dir),
            started=datetime.now(UTC).isoformat(),
            command=rerun_command(self.overrides),
            replay=f"python -m runner --config-path {self.run_dir.resolve()}/.hydra --config-name config",
            overrides=self.overrides,
            config=self.config,
        )


def rerun_command(overrides: list[str]) -> str:
    return " ".join(["python -m runner", *(shlex.quote(o) for o in overrides)])


def failure(error: BaseException) -> Error:
    return Error(
        type=type(error).__name__,
        message=str(error) or type(error).__name__,
        traceback="".join(traceback.format_exception(error))[-4000:],
    )
