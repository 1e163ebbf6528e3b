"""Workflow data round-trips exactly through JSON, and unstorable data names its path."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wfe.core import DataSerializationError
from wfe.core.serialization import dumps, loads, restore
from wfe.core.testing import SampleColor, SampleData, SampleLine


def assert_identical(a: Any, b: Any, path: str = "data") -> None:
    """Equal, and of the same type at every level (``1``, ``1.0`` and ``True`` differ)."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} became {type(b).__name__}"
    if isinstance(a, dict):
        assert list(a) == list(b), path
        for k in a:
            assert_identical(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_identical(x, y, f"{path}[{i}]")
    elif attrs.has(type(a)):
        for f in attrs.fields(type(a)):
            assert_identical(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
    else:
        assert a == b, path
        if isinstance(a, Decimal):
            assert str(a) == str(b), f"{path}: {a} became {b}"


finite_decimals = st.decimals(allow_nan=False, allow_infinity=False)
zones = st.sampled_from([None, UTC, timezone(timedelta(hours=5, minutes=30))])
hashable_leaves = st.one_of(
    st.integers(),
    st.text(),
    st.booleans(),
    st.uuids(),
    st.dates(),
    st.decimals(allow_nan=False, allow_infinity=False),
)
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.datetimes(timezones=zones),
    st.dates(),
    st.times(),
    st.timedeltas(),
    st.uuids(),
    st.binary(max_size=20),
    st.sampled_from(list(SampleColor)),
    st.frozensets(hashable_leaves, max_size=4),
)
values = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(st.text(max_size=8), children, max_size=4),
        st.builds(
            SampleLine, sku=st.text(), price=st.decimals(allow_nan=False, allow_infinity=False)
        ),
    ),
    max_leaves=20,
)


@settings(deadline=None, max_examples=300)
@given(values)
def test_supported_values_round_trip_exactly(value: Any) -> None:
    text = dumps(value)
    json.loads(text)  # plain JSON
    assert_identical(value, loads(text))


@given(st.dictionaries(st.sampled_from(["$wfe", "v", "type"]), st.text(), min_size=1))
def test_dicts_that_look_like_tags_stay_dicts(value: dict[str, str]) -> None:
    assert_identical(value, loads(dumps(value)))


def test_sample_data_round_trips_exactly() -> None:
    data = SampleData()
    back = loads(dumps(data))
    assert_identical(data, back)
    assert back is not data


def test_decimal_keeps_its_exponent() -> None:
    assert str(loads(dumps(Decimal("1.500")))) == "1.500"


def test_sets_round_trip() -> None:
    value = {"s": {1, "a", (2, 3)}, "f": frozenset({Decimal("1")})}
    assert loads(dumps(value)) == value


def test_none_stays_none() -> None:
    assert loads(None) is None
    assert loads(dumps(None)) is None


BAD_LINE = SampleLine("b", print)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"items": [1, 2, {"fn": print}]}, "data.items[2].fn"),
        ({"nested": {"f": float("nan")}}, "data.nested.f"),
        ({"x": [float("inf")]}, "data.x[0]"),
        ({"a b": object()}, "data['a b']"),
        ({"keys": {1: "one"}}, "data.keys"),
        (SampleData(lines=[SampleLine("a", Decimal(1)), BAD_LINE]), "data.lines[1].price"),
        ([open], "data[0]"),
    ],
)  # fmt: skip
def test_unstorable_value_is_rejected_naming_its_path(data: Any, path: str) -> None:
    with pytest.raises(DataSerializationError) as info:
        dumps(data)
    assert info.value.path == path
    assert path in str(info.value)


def test_unstorable_value_message_says_what_can_be_stored() -> None:
    with pytest.raises(DataSerializationError, match=r"cannot store builtins\.object at data"):
        dumps(object())


def test_unknown_tag_is_rejected_on_load() -> None:
    with pytest.raises(DataSerializationError, match="unknown tag 'mystery'") as info:
        loads('{"a": {"$wfe": "mystery", "v": 1}}')
    assert info.value.path == "data.a"


def test_type_that_cannot_be_imported_is_rejected_on_load() -> None:
    text = '{"$wfe": "attrs", "type": "wfe_no_such_module:Gone", "v": {}}'
    with pytest.raises(DataSerializationError, match="cannot be imported"):
        loads(text)


def test_enum_members_keep_their_type() -> None:
    assert loads(dumps(SampleColor.RED)) is SampleColor.RED
    assert loads(dumps([time(1, 2, 3), date(2020, 1, 1)])) == [time(1, 2, 3), date(2020, 1, 1)]


def test_restore_builds_the_attrs_type_from_a_dict() -> None:
    line = restore({"sku": "x", "price": Decimal("2")}, SampleLine)
    assert line == SampleLine("x", Decimal("2"))
    assert restore(line, SampleLine) is line
    assert restore({"a": 1}, dict) == {"a": 1}
    assert restore(None, SampleLine) is None


def test_restore_names_unknown_fields() -> None:
    with pytest.raises(DataSerializationError, match="unknown field") as info:
        restore({"sku": "x", "price": 1, "colour": "red"}, SampleLine)
    assert info.value.path == "data.colour"


def test_uuid_and_datetime_with_offset_round_trip() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=-3)))
    value = {"id": uuid.UUID(int=5), "at": moment}
    back = loads(dumps(value))
    assert back == value
    assert back["at"].utcoffset() == timedelta(hours=-3)


_FOREIGN = (
    '{"$wfe":"attrs","type":"__main__:Gone","v":{"total":{"$wfe":"decimal","v":"1.50"},'
    '"color":{"$wfe":"enum","type":"nowhere:Color","v":"red"}}}'
)


def test_opaque_types_keep_values_of_unimportable_classes_as_stored() -> None:
    """Inside opaque_types(), a class that cannot be imported reads as a StoredValue that
    is stored again byte for byte; outside, reading it raises."""
    from wfe.core.serialization import StoredValue, opaque_types

    with pytest.raises(DataSerializationError, match="cannot be imported"):
        loads(_FOREIGN)
    with opaque_types():
        value = loads(_FOREIGN)
        listed = loads(f'{{"items":[{_FOREIGN}],"n":1}}')
    assert isinstance(value, StoredValue)
    assert value.type_name == "__main__:Gone"
    assert dumps(value) == _FOREIGN
    assert listed["n"] == 1
    assert isinstance(listed["items"][0], StoredValue)
    # Importable classes still come back as themselves.
    with opaque_types():
        sample = loads(dumps(SampleLine(sku="a", price=Decimal("2"))))
    assert isinstance(sample, SampleLine)


@pytest.mark.parametrize(
    ("value", "path", "why"),
    [
        ({"n": 10**5000}, "data.n", "digits"),
        ({"s": "a\udc80b"}, "data.s", "surrogate"),
        ({"k": {"\ud800": 1}}, "data.k", "surrogate"),
        ({"items": [1, {"deep": "x"}]}, None, None),
    ],
)
def test_unstorable_odd_values_are_refused_naming_the_field(
    value: Any, path: str | None, why: str | None
) -> None:
    if path is None:
        assert loads(dumps(value)) == value
        return
    with pytest.raises(DataSerializationError, match=why) as info:
        dumps(value)
    assert path in str(info.value)


def test_deep_nesting_is_refused_without_a_recursion_error() -> None:
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(DataSerializationError, match="nested more than") as info:
        dumps({"tree": deep})
    assert "data.tree[0][0]" in str(info.value)


def test_largest_storable_integer_round_trips() -> None:
    big = 10**3999
    assert loads(dumps({"n": big})) == {"n": big}


def assert_same_datetime(a: datetime, b: datetime) -> None:
    """The same wall time, zone object (or offset) and fold: not only the same instant."""
    assert (b.replace(tzinfo=None), b.fold) == (a.replace(tzinfo=None), a.fold), (a, b)
    if isinstance(a.tzinfo, ZoneInfo):
        assert b.tzinfo is a.tzinfo, f"{a!r} came back as {b!r}"
    else:
        assert b.utcoffset() == a.utcoffset(), f"{a!r} came back as {b!r}"


@settings(deadline=None, max_examples=200)
@given(
    st.datetimes(timezones=st.none() | st.timezones(), allow_imaginary=False).flatmap(
        lambda d: st.sampled_from([d, d.replace(fold=1)])
    )
)
def test_datetimes_in_any_zone_round_trip_exactly(moment: datetime) -> None:
    """Any zone of the tz database, either fold, nested in data or alone."""
    back = loads(dumps({"at": [moment]}))["at"][0]
    assert_same_datetime(moment, back)
    assert_same_datetime(moment, loads(dumps(moment)))


def test_zoned_datetime_keeps_its_zone_and_fold() -> None:
    """Found by the property tests: a zoneinfo datetime came back at a fixed offset, so an
    ambiguous time (the second 01:30 of a DST fall-back) compared unequal to itself and
    later arithmetic lost the zone's rules."""
    zone = ZoneInfo("America/New_York")
    second = datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=zone)
    back = loads(dumps({"at": second}))["at"]
    assert back == second
    assert back.tzinfo is zone
    assert back.fold == 1
    assert (back + timedelta(days=1)).utcoffset() == timedelta(hours=-5)
    summer = loads(dumps(datetime(2026, 7, 1, 12, tzinfo=zone)))
    assert (summer + timedelta(days=180)).utcoffset() == timedelta(hours=-5)


def test_datetime_of_a_zone_unknown_here_keeps_its_instant() -> None:
    text = '{"$wfe":"datetime","v":"2026-07-01T12:00:00-04:00","tz":"Nowhere/Atlantis"}'
    assert loads(text) == datetime(2026, 7, 1, 16, tzinfo=UTC)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_keep_their_sign_and_bits(value: float) -> None:
    import math

    back = loads(dumps({"f": value}))["f"]
    assert back == value
    assert math.copysign(1.0, back) == math.copysign(1.0, value), "the sign of zero was lost"


@pytest.mark.parametrize("value", [Decimal("Infinity"), Decimal("-Infinity"), Decimal("-0")])
def test_special_decimals_round_trip(value: Decimal) -> None:
    back = loads(dumps(value))
    assert str(back) == str(value)


def test_nan_decimal_round_trips_as_nan() -> None:
    """Unlike a float NaN (refused: JSON has none), a Decimal NaN is its exact string."""
    assert loads(dumps(Decimal("NaN"))).is_nan()
