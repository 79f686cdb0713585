"""Check `group.key=value` overrides against the typed schemas before Hydra composes anything, so an
unknown key fails with the valid keys named (Hydra alone names only the bad key)."""

from __future__ import annotations

import dataclasses
import difflib
import sys
import typing

from runner.config import SCHEMAS
from runner.config.run import RunConfig

HYDRA_FLAGS_WITH_VALUE = {
    "--config-path",
    "-cp",
    "--config-name",
    "-cn",
    "--config-dir",
    "-cd",
    "--cfg",
    "-c",
    "--package",
    "-p",
    "--info",
    "--experimental-rerun",
}


def _fields(schema: type) -> dict[str, typing.Any]:
    hints = typing.get_type_hints(schema)
    return {f.name: hints[f.name] for f in dataclasses.fields(schema)}


def _group_fields(group: str) -> dict[str, typing.Any]:
    schemas = SCHEMAS[group].values()
    merged: dict[str, typing.Any] = {}
    for schema in schemas:
        merged.update(_fields(schema))
    return merged


def unknown_key(key: str) -> str | None:
    """An error message if `key` is not in the schema, else None."""
    parts = key.split(".")
    head = parts[0]
    if head.split("/")[0] in ("hydra", "experiment"):  # hydra.run.dir=..., hydra/launcher=ray
        return None
    fields = _group_fields(head) if head in SCHEMAS else _fields(RunConfig)
    path = parts[1:] if head in SCHEMAS else parts
    where = head if head in SCHEMAS else "the run config"
    for depth, part in enumerate(path):
        if part not in fields:
            shown = ".".join(([head] if head in SCHEMAS else []) + path[:depth])
            close = difflib.get_close_matches(part, fields, n=1)
            hint = f" Did you mean {(shown + '.' if shown else '') + close[0]!r}?" if close else ""
            return (
                f"unknown key {key!r}: {where} has no {part!r}.{hint} "
                f"Valid keys{' of ' + shown if shown else ''}: {', '.join(sorted(fields))}"
            )
        kind = fields[part]
        if dataclasses.is_dataclass(kind):
            fields = _fields(kind)
        else:
            return None  # a leaf or a free-form mapping (model.architecture)
    return None


def check_overrides(argv: list[str]) -> None:
    skip_next = False
    for arg in argv:
        if skip_next:
            skip_next = False
            continue
        if arg in HYDRA_FLAGS_WITH_VALUE:
            skip_next = True
            continue
        if arg.startswith("-") or "=" not in arg or arg[0] in "+~":
            continue
        key = arg.split("=", 1)[0]
        if "." not in key and key in SCHEMAS:
            continue  # a group choice: Hydra names the valid options itself
        if message := unknown_key(key):
            print(f"error: {message}", file=sys.stderr)
            sys.exit(2)
