"""A record section: a dataclass that reads itself from results.json and writes itself back unchanged.

Every section keeps the keys it does not declare (`extra`), in their place, so that a section another plugin adds to
(torchao's fields in `model.quantization`, say) passes through without edits here. It also remembers which of its
fields were set, so that writing a loaded record gives back the same JSON: a field never written stays absent,
a field written as null stays null.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar, Union

S = TypeVar("S", bound="Section")


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()  # a field's default: "not in the record", as opposed to None, "in the record as null"


def _hints(cls: type) -> dict[str, Any]:
    cached = cls.__dict__.get("_hint_cache")
    if cached is None:
        cached = typing.get_type_hints(cls)
        cls._hint_cache = cached
    return cached


def _section_type(hint: Any) -> type | None:
    """The Section class a field holds (X, X | None), else None."""
    if isinstance(hint, type) and issubclass(hint, Section):
        return hint
    if typing.get_origin(hint) in (Union, types.UnionType):
        found = [h for h in typing.get_args(hint) if isinstance(h, type) and issubclass(h, Section)]
        return found[0] if found else None
    return None


def _mapped_section(hint: Any) -> type | None:
    """The Section class of a `dict[str, X]` field's values, else None."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) is dict and len(args) == 2:
        return _section_type(args[1])
    return None


def _read(hint: Any, value: Any) -> Any:
    if isinstance(value, dict):
        if (cls := _section_type(hint)) is not None:
            return cls.from_dict(value)
        if (cls := _mapped_section(hint)) is not None:
            return {k: cls.from_dict(v) if isinstance(v, dict) else v for k, v in value.items()}
    if isinstance(value, list) and (cls := _section_type(next(iter(typing.get_args(hint)), None))) is not None:
        return [cls.from_dict(v) if isinstance(v, dict) else v for v in value]
    return value


def _write(value: Any) -> Any:
    if isinstance(value, Section):
        return value.to_dict()
    if isinstance(value, dict):
        return {k: _write(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_write(v) for v in value]
    return value


@dataclasses.dataclass
class Section:
    """Subclasses are dataclasses whose fields default to UNSET; `extra` holds the keys they do not declare."""

    extra: dict[str, Any] = dataclasses.field(default_factory=dict, kw_only=True, repr=False)

    def __setattr__(self, name: str, value: Any) -> None:
        order = self.__dict__.setdefault("_order", [])
        if name != "extra" and value is not UNSET and name not in order:
            order.append(name)
        object.__setattr__(self, name, value)

    def __getattribute__(self, name: str) -> Any:
        value = object.__getattribute__(self, name)
        return None if value is UNSET else value

    def has(self, name: str) -> bool:
        """Whether the record holds this field (possibly as null)."""
        return name in self.__dict__.get("_order", []) or name in self.extra

    @classmethod
    def from_dict(cls: type[S], data: dict[str, Any] | None) -> S:
        data = dict(data or {})
        hints = _hints(cls)
        declared = {f.name for f in dataclasses.fields(cls) if f.name != "extra"}
        section = cls(**{k: _read(hints[k], v) for k, v in data.items() if k in declared})
        section.extra = {k: v for k, v in data.items() if k not in declared}
        section.__dict__["_order"] = list(data)  # the file's order, undeclared keys included
        return section

    def to_dict(self) -> dict[str, Any]:
        order = list(self.__dict__.get("_order", []))
        order += [k for k in self.extra if k not in order]
        out: dict[str, Any] = {}
        for key in order:
            if key in self.extra:
                out[key] = _write(self.extra[key])
            elif hasattr(type(self), "__dataclass_fields__") and key in type(self).__dataclass_fields__:
                value = object.__getattribute__(self, key)
                if value is not UNSET:
                    out[key] = _write(value)
        return out
