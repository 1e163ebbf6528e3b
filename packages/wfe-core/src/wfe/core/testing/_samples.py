"""Sample instances, data and helpers shared by the contract suites."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs

from .._models import ExecutionPointer, PointerStatus, WorkflowInstance, WorkflowStatus

#: A fixed, whole-second, timezone-aware instant the suites build times from.
T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)

_LETTERS = str.maketrans("0123456789", "ghijklmnop")


def unique_word(prefix: str = "w") -> str:
    """A fresh lower-case word of letters only, so every tokenizer keeps it whole."""
    return prefix + uuid.uuid4().hex.translate(_LETTERS)


class SampleColor(enum.Enum):
    """An enum stored inside sample data."""

    RED = "red"
    GREEN = "green"


@attrs.define
class SampleLine:
    """A nested attrs value inside :class:`SampleData`."""

    sku: str
    price: Decimal
    quantity: int = 1


@attrs.define
class SampleData:
    """Workflow data using every kind of value a store must round-trip exactly."""

    total: Decimal = Decimal("12.50")
    due: datetime = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
    day: date = date(2026, 2, 28)
    wait: timedelta = timedelta(days=1, seconds=2, microseconds=3)
    order_id: uuid.UUID = attrs.field(
        factory=lambda: uuid.UUID("12345678-1234-5678-1234-567812345678")
    )
    color: SampleColor = SampleColor.GREEN
    lines: list[SampleLine] = attrs.field(
        factory=lambda: [SampleLine("a-1", Decimal("0.10")), SampleLine("b-2", Decimal("3"), 4)]
    )
    tags: dict[str, Any] = attrs.field(
        factory=lambda: {"$wfe": "not a tag", "pair": (1, "x"), "raw": b"\x00\xff", "n": None}
    )
    ratio: float = 0.1
    flag: bool = True


@attrs.define
class SampleTagged:
    """Workflow data whose type declares extra search words."""

    code: str

    def __search_tokens__(self) -> list[str]:
        return [f"tagged{self.code}"]


def make_pointer(step_id: int, *, sequence: int | None = None, **fields: Any) -> ExecutionPointer:
    """A pointer for step ``step_id`` (``sequence`` defaults to ``step_id``)."""
    fields.setdefault("step_name", f"step-{step_id}")
    return ExecutionPointer(
        step_id=step_id, sequence=step_id if sequence is None else sequence, **fields
    )


def make_instance(
    *,
    definition_id: str = "contract",
    version: int = 1,
    pointers: int = 1,
    data: Any = None,
    status: WorkflowStatus = WorkflowStatus.RUNNABLE,
    next_execution: datetime | None = None,
    reference: str | None = None,
    description: str | None = None,
    create_time: datetime = T0,
    complete_time: datetime | None = None,
) -> WorkflowInstance:
    """An instance with ``pointers`` pointers (sequences 0..n-1): all complete but the
    last, which is pending; each pointer's scope lists the previous pointer's id."""
    made: list[ExecutionPointer] = []
    for i in range(pointers):
        last = i == pointers - 1
        made.append(
            make_pointer(
                i,
                status=PointerStatus.PENDING if last else PointerStatus.COMPLETE,
                active=last,
                scope=[made[-1].id] if made else [],
                predecessor_id=made[-1].id if made else None,
                start_time=None if last else T0 + timedelta(seconds=i),
                end_time=None if last else T0 + timedelta(seconds=i, milliseconds=500),
                end_sequence=None if last else i + 1,
            )
        )
    return WorkflowInstance(
        definition_id=definition_id,
        version=version,
        data=data,
        status=status,
        next_execution=next_execution,
        reference=reference,
        description=description,
        create_time=create_time,
        complete_time=complete_time,
        execution_pointers=made,
    )


@contextmanager
def expect_raises(
    exc_type: type[BaseException] | tuple[type[BaseException], ...], what: str
) -> Iterator[list[BaseException]]:
    """Assert the block raises ``exc_type``; the list receives the exception.

    The suites use this instead of ``pytest.raises`` so that ``wfe.core.testing``
    imports without pytest.
    """
    caught: list[BaseException] = []
    try:
        yield caught
    except exc_type as exc:
        caught.append(exc)
        return
    raise AssertionError(f"expected {exc_type} from {what}, nothing was raised")
