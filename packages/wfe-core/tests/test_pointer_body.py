"""A pointer's stored JSON body: defaults left out, everything else kept exactly."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from wfe.core import ExecutionPointer, PointerStatus
from wfe.core.serialization import dumps, pointer_body, pointer_from_body
from wfe.core.testing import SampleData

T = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)


def test_a_new_pointer_stores_its_status_and_step_only() -> None:
    p = ExecutionPointer(step_id=3, sequence=4)
    assert json.loads(pointer_body(p)) == {"status": "PENDING", "step_id": 3}
    assert pointer_from_body(p.id, 4, pointer_body(p)) == p


@pytest.mark.parametrize(
    ("field", "value"),
    [
        # Falsy values that are not the field's default are stored.
        ("active", False),
        ("event_published", True),
        ("event_data", 0),
        ("event_data", ""),
        ("event_data", []),
        ("persistence_data", {}),
        ("outcome", False),
        ("context_item", 0.0),
        ("retry_count", 2),
        ("children", ["a"]),
        ("extension", {"k": None}),
        ("sleep_until", T),
        ("end_sequence", 0),
    ],
)
def test_a_value_other_than_the_default_is_kept(field: str, value: Any) -> None:
    p = attrs.evolve(ExecutionPointer(step_id=1), **{field: value})
    assert field in json.loads(pointer_body(p))
    back = pointer_from_body(p.id, 0, pointer_body(p))
    assert back == p
    assert type(getattr(back, field)) is type(value)


def test_a_body_written_whole_by_an_earlier_release_still_reads() -> None:
    p = ExecutionPointer(
        step_id=2,
        status=PointerStatus.COMPLETE,
        active=False,
        start_time=T,
        end_time=T,
        scope=["x"],
        event_data=SampleData(),
    )
    whole = {f.name: getattr(p, f.name) for f in attrs.fields(ExecutionPointer)}
    del whole["id"], whole["sequence"]
    whole["status"] = p.status.value
    whole["added_by_a_newer_release"] = 1
    assert pointer_from_body(p.id, p.sequence, dumps(whole)) == p


def test_each_pointer_gets_its_own_lists_and_dicts() -> None:
    body = pointer_body(ExecutionPointer(step_id=1))
    a, b = (pointer_from_body("p", 0, body) for _ in range(2))
    a.children.append("c")
    a.extension["k"] = 1
    assert (b.children, b.extension) == ([], {})


_values = st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=3)


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "active": st.booleans(),
            "event_published": st.booleans(),
            "retry_count": st.integers(0, 3),
            "event_data": _values | st.lists(_values, max_size=2),
            "persistence_data": _values | st.dictionaries(st.text(max_size=2), _values),
            "outcome": _values,
            "context_item": _values,
            "children": st.lists(st.text(max_size=3), max_size=2),
            "scope": st.lists(st.text(max_size=3), max_size=2),
            "end_sequence": st.none() | st.integers(0, 3),
            "step_name": st.none() | st.text(max_size=3),
        },
    )
)
def test_every_pointer_round_trips(fields: dict[str, Any]) -> None:
    p = ExecutionPointer(step_id=1, **fields)
    assert pointer_from_body(p.id, p.sequence, pointer_body(p)) == p
