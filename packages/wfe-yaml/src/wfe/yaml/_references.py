"""References to steps that do not exist: ``${{ data.steps.NAME... }}`` in any value
and ``.steps.NAME`` fields of ``when:`` conditions must name a step of the same
workflow (a typo would otherwise read as null, or fail only when the step runs)."""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterator

from ._conditions import parse_field
from ._data import STEPS_KEY
from ._errors import Issue
from ._interpolation import EXPRESSION, parse_expression
from ._nodes import YamlNode


def _children(node: YamlNode) -> Iterator[tuple[str | None, YamlNode]]:
    if node.is_map:
        yield from node.items()
    elif node.is_seq:
        for child in node.value:
            yield None, child


def _referenced(parts: tuple[object, ...]) -> str | None:
    if len(parts) >= 2 and parts[0] == STEPS_KEY and isinstance(parts[1], str):
        return parts[1]
    return None


def _unknown(name: str, known: Collection[str], what: str, node: YamlNode) -> Issue:
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    names = ", ".join(sorted(known)) or "none"
    return node.issue(
        f"{what} refers to step {name!r}, which this workflow does not have{hint} (steps: {names})"
    )


def check_step_references(
    node: YamlNode, names: Collection[str], issues: list[Issue], *, in_when: bool = False
) -> None:
    """Report every reference under ``node`` (a workflow) to a step not in ``names``."""
    if node.is_scalar:
        if isinstance(node.value, str) and "${{" in node.value:
            for m in EXPRESSION.finditer(node.value):
                parsed = parse_expression(m.group(1))
                if parsed is None or parsed[0] != "data":
                    continue
                name = _referenced(parsed[1])
                if name is not None and name not in names:
                    issues.append(_unknown(name, names, f"`{m.group()}`", node))
        return
    for key, child in _children(node):
        when = in_when or key == "when"
        if when and key == "field" and child.is_scalar:
            path = parse_field(child.value)
            name = _referenced(path) if path is not None else None
            if name is not None and name not in names:
                issues.append(_unknown(name, names, f"condition field {child.value!r}", child))
            continue
        check_step_references(child, names, issues, in_when=when)
