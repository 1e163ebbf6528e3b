"""Durations and typed declarations."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from wfe.yaml import parse_duration
from wfe.yaml._types import parse_type


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500ms", timedelta(milliseconds=500)),
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2h", timedelta(hours=2)),
        ("1m30s500ms", timedelta(minutes=1, seconds=30, milliseconds=500)),
    ],
)
def test_durations(text: str, value: timedelta) -> None:
    assert parse_duration(text) == value


@pytest.mark.parametrize("text", ["", "30", "5 m", "1d", "30m1h", "ms", "-5s", 30, None])
def test_not_durations(text: Any) -> None:
    assert parse_duration(text) is None


@pytest.mark.parametrize(
    ("type_", "good", "bad"),
    [
        ("string", ["a"], [1, None, True]),
        ("number", [1, 1.5], ["1", True]),
        ("integer", [1], [1.5, True]),
        ("bool", [True], [1, "true"]),
        ("any", [1, "a", None, [1]], []),
        ("string?", ["a", None], [1]),
        ("list<integer>", [[], [1, 2]], [[1, "a"], "x"]),
        ("map<list<string>>", [{"a": ["x"]}], [{"a": [1]}, ["x"]]),
        ("list<string?>?", [None, [None, "a"]], [[1]]),
    ],
)
def test_types_check_values(type_: str, good: list[Any], bad: list[Any]) -> None:
    t = parse_type(type_)
    assert t is not None
    assert str(t) == type_
    for v in good:
        assert t.check(v) is None, v
    for v in bad:
        assert t.check(v) is not None, v


@pytest.mark.parametrize("text", ["str", "list<>", "list<int>", "map", "??", 3])
def test_invalid_types(text: Any) -> None:
    assert parse_type(text) is None
