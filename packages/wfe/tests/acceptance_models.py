"""Module-level attrs data classes for the DESIGN.md §3-§6 acceptance tests."""

from __future__ import annotations

import enum
from datetime import date, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import attrs


class Color(enum.Enum):
    """An Enum stored in workflow data."""

    RED = "red"
    GREEN = "green"


@attrs.define
class Address:
    """A nested attrs class inside workflow data."""

    street: str = ""
    zip_code: str = ""


@attrs.define
class Rich:
    """Workflow data holding every type DESIGN.md §3 says round-trips exactly."""

    amount: Decimal = Decimal("0")
    when: datetime | None = None
    day: date | None = None
    span: timedelta | None = None
    uid: UUID | None = None
    color: Color = Color.RED
    address: Address = attrs.Factory(Address)
    tags: list[str] = attrs.Factory(list)
    scores: dict[str, int] = attrs.Factory(dict)
    amounts: list[Decimal] = attrs.Factory(list)


@attrs.define
class Order:
    """The §4/§5 example's data class."""

    total: float = 0.0
    approved: bool = False


@attrs.define
class Counter:
    """Typed data for input/output/loop tests."""

    n: int = 0
    value: int = 0
    text: str = ""
    result: str = ""
    items: list[int] = attrs.Factory(list)
    seen: list[str] = attrs.Factory(list)
    flag: bool = False


@attrs.define
class Holder:
    """Data with a field that may hold anything (for the unstorable-data test)."""

    name: str = ""
    payload: object = None
