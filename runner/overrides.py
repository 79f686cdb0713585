"""Check the keys of command-line overrides against the typed schemas before Hydra composes anything, so an unknown
key fails with the valid keys named and the closest one suggested (Hydra alone names only the bad key, and for
`+key=value` not even that). The overrides are parsed by Hydra's own parser: every form Hydra documents (`+`, `++`,
`~`, sweeps, quoted values, `group@package=option`) is read as Hydra reads it."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import OverrideParseException

from runner.config import SCHEMAS
from runner.config.run import RunConfig
from runner.errors import ConfigError, did_you_mean

CONF = Path(__file__).resolve().parents[1] / "conf"
FREE_FORM_HEADS = ("hydra", "experiment")  # Hydra's own node (checked once composed) and the experiment group


def _fields(schema: type) -> dict[str, typing.Any]:
    hints = typing.get_type_hints(schema)
    return {f.name: hints[f.name] for f in dataclasses.fields(schema)}


def _group_fields(group: str) -> dict[str, typing.Any]:
    merged: dict[str, typing.Any] = {}
    for schema in SCHEMAS[group].values():
        merged.update(_fields(schema))
    return merged


def unknown_key(key: str) -> str | None:
    """An error message if `key` is not in the schema, else None."""
    parts = key.split(".")
    head = parts[0]
    if head.split("/")[0] in FREE_FORM_HEADS:  # hydra.run.dir=..., hydra/launcher=ray
        return None
    fields = _group_fields(head) if head in SCHEMAS else _fields(RunConfig)
    path = parts[1:] if head in SCHEMAS else parts
    where = head if head in SCHEMAS else "the run config"
    for depth, part in enumerate(path):
        if part not in fields:
            shown = ".".join(([head] if head in SCHEMAS else []) + path[:depth])
            prefix = shown + "." if shown else ""
            hint = did_you_mean(part, fields, as_text=lambda close, prefix=prefix: repr(prefix + close))
            return (
                f"unknown key {key!r}: {where} has no {part!r}.{hint} "
                f"Valid keys{' of ' + shown if shown else ''}: {', '.join(sorted(fields))}"
            )
        kind = fields[part]
        if dataclasses.is_dataclass(kind):
            fields = _fields(kind)
        else:
            return None  # a leaf or a free-form mapping (model.architecture: runner/checks/model.py checks it)
    return None


def parse_overrides(overrides: list[str]) -> list[Override]:
    """Hydra's own parse of the command line's overrides; a syntax error is a ConfigError with Hydra's message."""
    try:
        return OverridesParser.create().parse_overrides(overrides)
    except OverrideParseException as e:
        raise ConfigError(str(e)) from e


def _choices(override: Override) -> list[str]:
    """The option(s) a group override picks: one, or each of a choice sweep's (`quant=none,4bit`)."""
    if override.is_sweep_override():
        try:
            return list(override.sweep_string_iterator())
        except Exception:  # a range or interval sweep: numbers, never a schema's name
            return []
    return [override.get_value_element_as_str()] if isinstance(override.value(), str) else []


def check_override_keys(overrides: list[Override]) -> None:
    """Every `key=value`, `+key=value`, `++key=value` and `~key` names a key the schemas have. Group choices
    (`quant=4bit`, `hydra/launcher=ray`) are left to Hydra, which lists the options of the group."""
    for override in overrides:
        key = override.key_or_group
        schemas = [c for c in _choices(override) if c in SCHEMAS.get(key, {})]
        if schemas:  # quant=base_quant: the schema, not an option
            options = sorted(p.stem for p in (CONF / key).glob("*.yaml"))
            raise ConfigError(f"{key}={schemas[0]} is the group's schema, not an option: use one of {options}")
        if override.package is not None or "/" in key or ("." not in key and key in SCHEMAS):
            continue  # a config group (or a group under another package): Hydra names the valid options
        if message := unknown_key(key):
            raise ConfigError(message)
