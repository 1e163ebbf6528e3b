"""`when:` conditions: comparisons, combinators, paths and their validation."""

from __future__ import annotations

from typing import Any

import pytest

from wfe.yaml import Issue
from wfe.yaml._conditions import parse_condition
from wfe.yaml._nodes import parse_yaml

DATA = {
    "files": 3,
    "name": "release-1",
    "tags": ["a", "b"],
    "flag": True,
    "none": None,
    "steps": {"build": {"exit_code": 0}},
}


def cond(text: str) -> Any:
    root, issues = parse_yaml(text, "c.yaml")
    assert root is not None
    assert not issues
    found: list[Issue] = []
    c = parse_condition(root, found)
    assert not found, found
    return c


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{field: .outputs.files, gt: 0}", True),
        ("{field: .outputs.files, gt: 3}", False),
        ("{field: .outputs.files, gte: 3}", True),
        ("{field: .outputs.files, lt: 3}", False),
        ("{field: .outputs.files, lte: 3}", True),
        ("{field: .outputs.files, equals: 3}", True),
        ("{field: .outputs.files, not_equals: 3}", False),
        ("{field: .inputs.name, equals: release-1}", True),
        ("{field: .inputs.name, contains: release}", True),
        ("{field: .outputs.tags, contains: b}", True),
        ("{field: .outputs.tags, contains: c}", False),
        ("{field: .outputs.flag, equals: true}", True),
        ("{field: .outputs.flag, equals: 1}", False),
        ("{field: .outputs.none, is_null: true}", True),
        ("{field: .outputs.missing, is_null: true}", True),
        ("{field: .outputs.files, is_not_null: true}", True),
        ("{field: .outputs.missing, gt: 0}", False),
        ("{field: .inputs.name, gt: 1}", False),
        ("{field: .steps.build.exit_code, equals: 0}", True),
        ("{all: [{field: .outputs.files, gt: 0}, {field: .outputs.flag, equals: true}]}", True),
        ("{any: [{field: .outputs.files, gt: 9}, {field: .outputs.flag, equals: true}]}", True),
        ("{none: [{field: .outputs.files, gt: 9}, {field: .outputs.flag, equals: false}]}", True),
        ("{one_of: [{field: .outputs.files, gt: 0}, {field: .outputs.flag, equals: true}]}", False),
        ("{one_of: [{field: .outputs.files, gt: 0}, {field: .outputs.flag, equals: false}]}", True),
        ("{not: {field: .outputs.files, gt: 0}}", False),
    ],
)
def test_conditions_evaluate(text: str, expected: bool) -> None:
    assert cond(text).evaluate(DATA) is expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{field: .outputs.x, gt: 1, lt: 2}", "exactly one operator"),
        ("{field: .outputs.x}", "exactly one operator"),
        ("{gt: 1}", "needs `field`"),
        ("{field: outputs.x, gt: 1}", "expected a path like"),
        ("{field: .other.x, gt: 1}", "expected a path like"),
        ("{field: .outputs.x, greater: 1}", "did you mean 'gte'"),
        ("{all: []}", "non-empty list"),
        ("{all: [{field: .outputs.x, gt: 1}], any: []}", "takes no other keys"),
        ("{field: .outputs.x, is_null: yes}", "true or false"),
        ("[1]", "expected a condition"),
    ],
)
def test_invalid_conditions_are_reported(text: str, message: str) -> None:
    root, _ = parse_yaml(text, "c.yaml")
    assert root is not None
    issues: list[Issue] = []
    assert parse_condition(root, issues) is None or issues
    assert any(message in i.message for i in issues), issues
