"""Small checks shared by the workflow schema and the step types."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from datetime import timedelta

from ._durations import DURATION_HELP, parse_duration
from ._errors import Issue
from ._interpolation import EXPRESSION, EXPRESSION_HELP, is_runtime, parse_expression
from ._nodes import YamlNode


def check_keys(node: YamlNode, allowed: Iterable[str], issues: list[Issue]) -> None:
    """Report each key of mapping ``node`` not in ``allowed``, with a "did you mean"."""
    allowed = list(allowed)
    for key, child in node.items():
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            issues.append(
                child.key_issue(
                    f"unknown key {key!r}{hint} (expected one of: {', '.join(allowed)})"
                )
            )


def expect_map(node: YamlNode | None, what: str, issues: list[Issue]) -> bool:
    if node is None:
        return False
    if not node.is_map:
        issues.append(node.issue(f"expected {what} (a mapping), got {_kind(node)}"))
        return False
    return True


def expect_string(node: YamlNode | None, issues: list[Issue], *, what: str = "a string") -> bool:
    if node is None:
        return False
    if not isinstance(node.value, str) or not node.value.strip():
        issues.append(node.issue(f"expected {what}, got {_kind(node)}"))
        return False
    return True


def expect_duration(node: YamlNode | None, issues: list[Issue]) -> timedelta | None:
    if node is None:
        return None
    value = parse_duration(node.value)
    if value is None:
        issues.append(node.issue(f"expected {DURATION_HELP}, got {_kind(node)}"))
        return None
    if value <= timedelta(0):
        issues.append(node.issue(f"expected a positive duration, got {node.value!r}"))
        return None
    return value


def expect_string_map(node: YamlNode | None, issues: list[Issue], what: str) -> bool:
    """A mapping of names to scalar values (``env:``)."""
    if not expect_map(node, what, issues):
        return False
    assert node is not None
    ok = True
    for key, child in node.items():
        if not child.is_scalar or child.value is None:
            issues.append(child.issue(f"expected a string value for {key!r}, got {_kind(child)}"))
            ok = False
        if not key or "=" in key or "\0" in key:
            issues.append(child.key_issue(f"{key!r} is not a valid environment variable name"))
            ok = False
    return ok


def expect_string_list(node: YamlNode | None, issues: list[Issue], what: str) -> bool:
    if node is None:
        return False
    if not node.is_seq:
        issues.append(node.issue(f"expected {what} (a list of strings), got {_kind(node)}"))
        return False
    ok = True
    for item in node.value:
        ok = expect_string(item, issues) and ok
    return ok


def forbid_data_expressions(node: YamlNode | None, issues: list[Issue], reason: str) -> None:
    """Report ``${{ data.* }}`` expressions in a value that is fixed at load time."""
    if node is None:
        return
    if node.is_map or node.is_seq:
        children = node.value.values() if node.is_map else node.value
        for child in children:
            forbid_data_expressions(child, issues, reason)
        return
    if isinstance(node.value, str):
        for m in EXPRESSION.finditer(node.value):
            parsed = parse_expression(m.group(1))
            if is_runtime(parsed):
                issues.append(node.issue(f"`{m.group()}` is not allowed here: {reason}"))


def check_expressions(node: YamlNode, issues: list[Issue]) -> None:
    """Report malformed ``${{ ... }}`` expressions anywhere under ``node``."""
    if node.is_map or node.is_seq:
        children = node.value.values() if node.is_map else node.value
        for child in children:
            check_expressions(child, issues)
        return
    if isinstance(node.value, str):
        for m in EXPRESSION.finditer(node.value):
            if parse_expression(m.group(1)) is None:
                issues.append(
                    node.issue(f"malformed expression `{m.group()}`; expected {EXPRESSION_HELP}")
                )


def _kind(node: YamlNode) -> str:
    if node.is_map:
        return "a mapping"
    if node.is_seq:
        return "a list"
    if node.value is None:
        return "null"
    return f"{type(node.value).__name__} {node.value!r}"


kind_of = _kind
