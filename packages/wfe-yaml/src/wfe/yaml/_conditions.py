"""``when:`` conditions: comparisons on ``.inputs.x`` / ``.outputs.x`` / ``.steps.NAME.key``
paths, combined with ``all``, ``any``, ``none``, ``one_of`` and ``not``.

A path that does not exist reads as null (so ``is_null`` holds for it and ordering
comparisons are false): a condition never fails a step.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

import attrs

from ._errors import Issue
from ._interpolation import InterpolationError, PathPart, parse_expression, resolve_path
from ._nodes import YamlNode

OPERATORS = (
    "equals",
    "not_equals",
    "gt",
    "gte",
    "lt",
    "lte",
    "contains",
    "is_null",
    "is_not_null",
)
COMBINATORS = ("all", "any", "none", "one_of", "not")
_ROOTS = ("inputs", "outputs", "steps")
CONDITION_HELP = (
    "a condition: {field: .outputs.x, <operator>: value} with one operator of "
    + ", ".join(OPERATORS)
    + "; or one of {all|any|none|one_of: [conditions]}, {not: condition}"
)


def _strict_equal(a: Any, b: Any) -> bool:
    # YAML's true is not 1: compare booleans only with booleans.
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_strict_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _ordered(a: Any, b: Any) -> bool:
    numbers = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    return (isinstance(a, numbers) and isinstance(b, numbers)) or (
        isinstance(a, str) and isinstance(b, str)
    )


@attrs.frozen
class Comparison:
    """``field`` (a path into workflow data) compared by ``op`` with ``value``."""

    field: str
    path: tuple[PathPart, ...]
    op: str
    value: Any

    def evaluate(self, data: Any) -> bool:
        try:
            actual = resolve_path(data, self.path)
        except InterpolationError:
            actual = None
        op, expected = self.op, self.value
        if op == "is_null":
            return (actual is None) is bool(expected)
        if op == "is_not_null":
            return (actual is not None) is bool(expected)
        if op == "equals":
            return _strict_equal(actual, expected)
        if op == "not_equals":
            return not _strict_equal(actual, expected)
        if op == "contains":
            if isinstance(actual, str):
                return isinstance(expected, str) and expected in actual
            if isinstance(actual, list | tuple):
                return any(_strict_equal(item, expected) for item in actual)
            if isinstance(actual, Mapping):
                return expected in actual
            return False
        if not _ordered(actual, expected):
            return False
        if op == "gt":
            return bool(actual > expected)
        if op == "gte":
            return bool(actual >= expected)
        if op == "lt":
            return bool(actual < expected)
        return bool(actual <= expected)


@attrs.frozen
class Combination:
    """``op`` (all, any, none, one_of, not) over ``items``."""

    op: str
    items: tuple[Condition, ...]

    def evaluate(self, data: Any) -> bool:
        results = [c.evaluate(data) for c in self.items]
        if self.op == "all":
            return all(results)
        if self.op == "any":
            return any(results)
        if self.op == "none":
            return not any(results)
        if self.op == "one_of":
            return results.count(True) == 1
        return not results[0]


Condition = Comparison | Combination


def parse_field(text: object) -> tuple[PathPart, ...] | None:
    """The data path of a condition field like ``.outputs.files`` (``None`` if invalid)."""
    if not isinstance(text, str) or not text.startswith("."):
        return None
    root = text[1:].split(".", 1)[0].split("[", 1)[0]
    if root not in _ROOTS:
        return None
    parsed = parse_expression("data" + text[1 + len(root) :] if root != "steps" else "data" + text)
    if parsed is None:
        return None
    return parsed[1]


def _suggest(word: str, options: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def parse_condition(node: YamlNode, issues: list[Issue]) -> Condition | None:
    """The condition ``node`` describes; problems are appended to ``issues``."""
    if not node.is_map or not node.value:
        issues.append(node.issue(f"expected {CONDITION_HELP}"))
        return None
    keys = list(node.value)
    combinators = [k for k in keys if k in COMBINATORS]
    if combinators:
        if len(keys) != 1:
            issues.append(
                node.issue(f"a {combinators[0]!r} condition takes no other keys, found {keys}")
            )
            return None
        op = combinators[0]
        child = node.value[op]
        if op == "not":
            inner = parse_condition(child, issues)
            return None if inner is None else Combination("not", (inner,))
        if not child.is_seq or not child.value:
            issues.append(child.issue(f"{op!r} expects a non-empty list of conditions"))
            return None
        items = [parse_condition(c, issues) for c in child.value]
        if any(i is None for i in items):
            return None
        return Combination(op, tuple(i for i in items if i is not None))
    ok = True
    for key in keys:
        if key != "field" and key not in OPERATORS:
            hint = _suggest(key, ("field", *OPERATORS, *COMBINATORS))
            issues.append(node.value[key].key_issue(f"unknown condition key {key!r}{hint}"))
            ok = False
    field_node = node.get("field")
    ops = [k for k in keys if k in OPERATORS]
    if field_node is None:
        issues.append(node.issue(f"a comparison needs `field` (like .outputs.x); {CONDITION_HELP}"))
        return None
    path = parse_field(field_node.value)
    if path is None:
        issues.append(
            field_node.issue(
                f"expected a path like .inputs.NAME, .outputs.NAME or .steps.STEP.exit_code, "
                f"got {field_node.value!r}"
            )
        )
        ok = False
    if len(ops) != 1:
        issues.append(
            node.issue(
                f"a comparison needs exactly one operator of {', '.join(OPERATORS)}, found "
                f"{ops or 'none'}"
            )
        )
        return None
    op = ops[0]
    value_node = node.value[op]
    if op in ("is_null", "is_not_null") and not isinstance(value_node.value, bool):
        issues.append(value_node.issue(f"{op!r} expects true or false"))
        ok = False
    if not value_node.is_scalar and op not in ("equals", "not_equals", "contains"):
        issues.append(value_node.issue(f"{op!r} expects a scalar value"))
        ok = False
    if not ok or path is None:
        return None
    return Comparison(str(field_node.value), path, op, value_node.plain())
