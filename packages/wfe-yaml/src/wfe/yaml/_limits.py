"""Output size limits shared by the shell and Deno step types, and their ``config`` keys."""

from __future__ import annotations

import re
from typing import Any

import attrs

from ._errors import Issue
from ._nodes import YamlNode

LIMIT_KEYS = ("max_output_size", "max_outputs_size")
DEFAULT_MAX_OUTPUT = 1024 * 1024
"""Largest single output value (bytes of its text or JSON) by default: 1 MiB."""
DEFAULT_MAX_OUTPUTS = 4 * 1024 * 1024
"""Largest total of one step's outputs by default: 4 MiB."""

_SIZE = re.compile(r"^(\d+)\s*(B|KB|KiB|MB|MiB|GB|GiB)?$")
_UNITS = {
    None: 1,
    "B": 1,
    "KB": 1000,
    "KiB": 1024,
    "MB": 1000**2,
    "MiB": 1024**2,
    "GB": 1000**3,
    "GiB": 1024**3,
}
SIZE_HELP = "a size: bytes (an integer) or a string like `64KiB`, `2MB`, `1MiB`"


def parse_size(value: Any) -> int | None:
    """A positive size in bytes from an int or a string like ``64KiB``; ``None`` if bad."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if not isinstance(value, str):
        return None
    m = _SIZE.match(value.strip())
    if m is None:
        return None
    size = int(m.group(1)) * _UNITS[m.group(2)]
    return size if size > 0 else None


@attrs.frozen(kw_only=True)
class OutputLimits:
    """How large one output value (``per_value``) and all of a step's outputs
    (``per_step``) may be, in bytes."""

    per_value: int = DEFAULT_MAX_OUTPUT
    per_step: int = DEFAULT_MAX_OUTPUTS

    @classmethod
    def from_config(cls, config: Any) -> OutputLimits:
        """The limits a validated ``config:`` mapping sets (defaults for absent keys)."""
        value = parse_size(config.get("max_output_size")) or DEFAULT_MAX_OUTPUT
        step = parse_size(config.get("max_outputs_size")) or DEFAULT_MAX_OUTPUTS
        return cls(per_value=value, per_step=step)


def check_limits(node: YamlNode, issues: list[Issue]) -> None:
    """Report malformed ``max_output_size`` / ``max_outputs_size`` keys."""
    for key in LIMIT_KEYS:
        child = node.get(key)
        if child is not None and parse_size(child.value) is None:
            issues.append(child.issue(f"expected {SIZE_HELP}, got {child.value!r}"))
