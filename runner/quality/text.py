"""The evaluation text: read at run time from something every machine installs, never copied into the repository.

Default: Python's own reference documentation as English prose (`pydoc_data.topics`, in the standard library). It
differs between Python versions, so the record carries the source and the sha256 of the exact bytes, and figures
are compared only where the sha256 matches. `quality.text_file` or `scenario.text` replace it."""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

from runner.errors import ConfigError


@dataclass(frozen=True)
class EvalText:
    text: str
    source: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def default_text() -> EvalText:
    from pydoc_data.topics import topics

    version = ".".join(map(str, sys.version_info[:3]))
    return EvalText("\n\n".join(topics[name] for name in sorted(topics)), f"pydoc_data.topics (Python {version})")


def evaluation_text(text_file: str | None, scenario_text: str | None) -> EvalText:
    if text_file:
        path = Path(text_file)
        if not path.is_file():
            raise ConfigError(f"quality.text_file={text_file!r}: no such file")
        return EvalText(path.read_text(encoding="utf-8"), f"file {path.resolve()}")
    if scenario_text:
        return EvalText(scenario_text, "scenario.text")
    return default_text()
