"""``${{ var.name }}`` (load time, from the config map) and the run-time expressions
``${{ data.path }}`` (workflow data), ``${{ matrix.x }}`` (the step's matrix
combination), ``${{ secrets.NAME }}`` (the workflow's secrets) and
``${{ artifacts.step.name }}`` (paths of earlier steps' artifacts), including their
shell-safe form.

In a shell script, a data expression is never pasted into the command text: see
:mod:`wfe.yaml._scanner`, which passes each value as an environment variable
``__WFE_EXPR_<n>`` referenced in quotes, and refuses contexts where quoting is not
enough.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from wfe.core import StepError

EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.S)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_SEGMENT = re.compile(
    r"""\.(?P<name>[A-Za-z_][A-Za-z0-9_-]*|\d+)|\[(?P<index>\d+)\]|\[(?P<q>["'])(?P<key>.*?)(?P=q)\]"""
)
ENV_PREFIX = "__WFE_EXPR_"
RUNTIME_NAMESPACES = ("data", "matrix", "secrets", "artifacts")
"""Namespaces resolved when the step runs (``var`` is resolved when the file loads)."""
EXPRESSION_HELP = (
    "`${{ var.NAME }}`, `${{ data.PATH }}` (PATH like a.b[0].c), `${{ matrix.NAME }}`, "
    "`${{ secrets.NAME }}` or `${{ artifacts.STEP.NAME }}`"
)

PathPart = str | int


class InterpolationError(StepError):
    """A ``${{ data.path }}`` expression names nothing in the workflow data."""


def parse_expression(inner: str) -> tuple[str, tuple[PathPart, ...]] | None:
    """``("var", (name,))`` or ``(namespace, parts)`` for the text between ``${{`` and
    ``}}`` (a namespace of :data:`RUNTIME_NAMESPACES`)."""
    text = inner.strip()
    head = _IDENT.match(text)
    if head is None or head.group() not in ("var", *RUNTIME_NAMESPACES):
        return None
    namespace = head.group()
    parts: list[PathPart] = []
    pos = head.end()
    while pos < len(text):
        seg = _SEGMENT.match(text, pos)
        if seg is None:
            return None
        if seg.group("name") is not None:
            name = seg.group("name")
            parts.append(int(name) if name.isdigit() else name)
        elif seg.group("index") is not None:
            parts.append(int(seg.group("index")))
        else:
            parts.append(seg.group("key"))
        pos = seg.end()
    if not parts:
        return None
    single = namespace in ("var", "matrix", "secrets")
    if single and (len(parts) != 1 or not isinstance(parts[0], str)):
        return None
    if namespace == "artifacts" and (len(parts) != 2 or not all(isinstance(p, str) for p in parts)):
        return None
    return namespace, tuple(parts)


def is_runtime(parsed: tuple[str, tuple[PathPart, ...]] | None) -> bool:
    """Whether a parsed expression is resolved when the step runs (not ``var``)."""
    return parsed is not None and parsed[0] in RUNTIME_NAMESPACES


def format_path(parts: Sequence[PathPart], root: str = "data") -> str:
    out = root
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif _IDENT.fullmatch(p):
            out += f".{p}"
        else:
            out += f"[{json.dumps(p)}]"
    return out


def resolve_expression(namespace: str, parts: Sequence[PathPart], data: Any) -> Any:
    """The value of a run-time expression: from ``data``, or from the running step's
    :class:`~wfe.yaml._scope.StepScope` for ``matrix``/``secrets``/``artifacts``."""
    if namespace == "data":
        return resolve_path(data, parts)
    from ._scope import current_scope

    scope = current_scope()
    source: Any = {
        "matrix": scope.matrix,
        "secrets": scope.secrets,
        "artifacts": scope.artifacts,
    }.get(namespace)
    if source is None:
        raise InterpolationError(f"unknown namespace {namespace!r} in an expression")
    if namespace == "secrets" and parts and parts[0] not in source:
        raise InterpolationError(
            f"${{{{ secrets.{parts[0]} }}}}: the secret {parts[0]!r} was not given to this "
            f"run; give it with --secret {parts[0]} (wfe run, and wfe resume after a restart)"
        )
    return resolve_path(source, parts, root=namespace)


def resolve_path(data: Any, parts: Sequence[PathPart], root: str = "data") -> Any:
    """The value at ``parts`` in ``data``; raises :class:`InterpolationError` naming the
    first segment that does not exist."""
    value = data
    for i, part in enumerate(parts):
        here = format_path(parts[: i + 1], root)
        if isinstance(value, Mapping):
            key: Any = part if part in value else str(part)
            if key not in value:
                known = ", ".join(sorted(map(str, value))[:20]) or "none"
                raise InterpolationError(f"${{{{ {here} }}}}: no such key (known keys: {known})")
            value = value[key]
        elif isinstance(value, list | tuple):
            if not isinstance(part, int) or not -len(value) <= part < len(value):
                raise InterpolationError(
                    f"${{{{ {here} }}}}: index {part!r} is out of range for a list of "
                    f"{len(value)} items"
                )
            value = value[part]
        else:
            raise InterpolationError(
                f"${{{{ {here} }}}}: {format_path(parts[:i], root)} is {type(value).__name__}, "
                "not a map or list"
            )
    return value


def to_text(value: Any) -> str:
    """How a data value reads in text: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, ensure_ascii=False)


def data_references(text: str) -> list[tuple[PathPart, ...]]:
    """The data paths referenced by ``text``."""
    refs = []
    for m in EXPRESSION.finditer(text):
        parsed = parse_expression(m.group(1))
        if parsed is not None and parsed[0] == "data":
            refs.append(parsed[1])
    return refs


def references(text: str) -> list[tuple[str, tuple[PathPart, ...]]]:
    """Every run-time expression of ``text`` as ``(namespace, parts)``."""
    out = []
    for m in EXPRESSION.finditer(text):
        parsed = parse_expression(m.group(1))
        if parsed is not None and is_runtime(parsed):
            out.append(parsed)
    return out


def render(text: str, data: Any) -> str:
    """``text`` with every ``${{ data.path }}`` replaced by its value (as text)."""

    def sub(m: re.Match[str]) -> str:
        parsed = parse_expression(m.group(1))
        if parsed is None or not is_runtime(parsed):
            return m.group()
        return to_text(resolve_expression(parsed[0], parsed[1], data))

    return EXPRESSION.sub(sub, text)


def render_value(value: Any, data: Any) -> Any:
    """Like :func:`render`, through lists and maps; a string that is exactly one
    expression keeps the value's type."""
    if isinstance(value, str):
        m = EXPRESSION.fullmatch(value.strip())
        if m is not None:
            parsed = parse_expression(m.group(1))
            if parsed is not None and is_runtime(parsed):
                return resolve_expression(parsed[0], parsed[1], data)
        return render(value, data)
    if isinstance(value, list):
        return [render_value(v, data) for v in value]
    if isinstance(value, dict):
        return {k: render_value(v, data) for k, v in value.items()}
    return value
