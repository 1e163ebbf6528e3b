"""Typed ``inputs``/``outputs`` declarations: ``string``, ``number``, ``integer``, ``bool``,
``any``, ``T?`` (may be null or absent), ``list<T>``, ``map<T>``."""

from __future__ import annotations

import json
from typing import Any

import attrs

_SCALARS = ("string", "number", "integer", "bool", "any")
TYPE_HELP = "a type: string, number, integer, bool, any, T?, list<T> or map<T>"


@attrs.frozen
class ValueType:
    """A parsed type expression."""

    kind: str  # one of _SCALARS, "list", "map"
    item: ValueType | None = None
    optional: bool = False

    def __str__(self) -> str:
        base = f"{self.kind}<{self.item}>" if self.item is not None else self.kind
        return f"{base}?" if self.optional else base

    def from_text(self, text: str) -> Any:
        """The value a command-line ``NAME=TEXT`` gives an input of this type: the text
        itself for ``string``; JSON (``1.10``, ``true``, ``[1, 2]``, ``null``) for the
        others, and ``yes``/``no``/``on``/``off`` for ``bool``. Text that does not parse
        is returned unchanged, so :meth:`check` reports it."""
        if self.optional and text.strip() == "null":
            return None
        if self.kind == "string":
            return text
        if self.kind == "bool":
            lowered = text.strip().lower()
            if lowered in ("true", "yes", "on", "1"):
                return True
            if lowered in ("false", "no", "off", "0"):
                return False
            return text
        try:
            value = json.loads(text)
        except ValueError:
            return text
        if self.kind == "integer" and isinstance(value, float) and value.is_integer():
            return text  # "3.0" is not an integer as written; let check() say so
        return value

    def check(self, value: Any, path: str = "value") -> str | None:
        """``None`` if ``value`` has this type, else a message saying what is wrong."""
        if value is None:
            return (
                None
                if self.optional or self.kind == "any"
                else f"{path}: expected {self}, got null"
            )
        kind = self.kind
        ok: bool
        if kind == "any":
            return None
        if kind == "string":
            ok = isinstance(value, str)
        elif kind == "bool":
            ok = isinstance(value, bool)
        elif kind == "integer":
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif kind == "number":
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        elif kind == "list":
            if not isinstance(value, list | tuple):
                ok = False
            else:
                assert self.item is not None
                for i, v in enumerate(value):
                    problem = self.item.check(v, f"{path}[{i}]")
                    if problem:
                        return problem
                return None
        else:
            if not isinstance(value, dict):
                ok = False
            else:
                assert self.item is not None
                for k, v in value.items():
                    if not isinstance(k, str):
                        return f"{path}: map keys must be strings, got {k!r}"
                    problem = self.item.check(v, f"{path}.{k}")
                    if problem:
                        return problem
                return None
        if ok:
            return None
        return f"{path}: expected {self}, got {type(value).__name__} {_short(value)}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_type(text: object) -> ValueType | None:
    """The type ``text`` denotes, or ``None`` if it is not a valid type expression."""
    if not isinstance(text, str):
        return None
    s = text.strip()
    optional = s.endswith("?")
    if optional:
        s = s[:-1].strip()
    if s in _SCALARS:
        return ValueType(s, None, optional)
    for kind in ("list", "map"):
        if s.startswith(f"{kind}<") and s.endswith(">"):
            inner = parse_type(s[len(kind) + 1 : -1])
            if inner is None:
                return None
            return ValueType(kind, inner, optional)
    return None
