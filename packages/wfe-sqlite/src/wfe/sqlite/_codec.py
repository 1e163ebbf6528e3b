"""Conversions between wfe models and SQLite rows.

Times become integer microseconds since the epoch (UTC; a naive datetime is read as
UTC) so SQL compares them exactly; they come back timezone-aware UTC. Workflow data and
pointer fields are JSON from ``wfe.core.serialization``, which round-trips Decimal,
datetime, attrs classes and the rest exactly.
"""

from __future__ import annotations

import json
from typing import Any

from wfe.core import (
    Event,
    EventSubscription,
    ExecutionPointer,
    PointerStatus,
    WorkflowInstance,
    WorkflowStatus,
)
from wfe.core.serialization import dumps, loads, pointer_body

# Re-exported for the modules that use this codec: the stores' time columns, and a
# pointer's JSON body (shared by every store).
from wfe.core.serialization import from_us as from_us
from wfe.core.serialization import from_us_opt as from_us_opt
from wfe.core.serialization import pointer_from_body as pointer_from_body
from wfe.core.serialization import to_us as to_us
from wfe.core.serialization import to_us_opt as to_us_opt


def pointer_row(workflow_id: str, pointer: ExecutionPointer) -> tuple[str, str, int, str]:
    """``(id, workflow_id, sequence, body)`` for the ``pointers`` table."""
    return (pointer.id, workflow_id, pointer.sequence, pointer_body(pointer))


def receive_event(body: str, event_data: str | None) -> str | None:
    """A stored pointer body after receiving an event whose stored data is
    ``event_data``, or ``None`` when the pointer does not wait for one. Works on the JSON
    itself, so no data class named in it needs importing."""
    fields: dict[str, Any] = json.loads(body)
    waiting = fields.get("status") == PointerStatus.WAITING_FOR_EVENT.value
    if not waiting or fields.get("event_published"):
        return None
    fields["event_published"] = True
    fields["event_data"] = None if event_data is None else json.loads(event_data)
    fields["status"] = PointerStatus.PENDING.value
    fields["active"] = True
    return json.dumps(fields, separators=(",", ":"), allow_nan=False)


WORKFLOW_COLUMNS = (
    "id, definition_id, version, description, reference, status, data, "
    "next_execution, create_time, complete_time, fingerprint"
)


def workflow_params(instance: WorkflowInstance, data_json: str | None = None) -> tuple[Any, ...]:
    """Values for :data:`WORKFLOW_COLUMNS`, in order (``data_json``: the data already
    serialised)."""
    return (
        instance.id,
        instance.definition_id,
        instance.version,
        instance.description,
        instance.reference,
        WorkflowStatus(instance.status).value,
        dumps(instance.data) if data_json is None else data_json,
        to_us_opt(instance.next_execution),
        to_us(instance.create_time),
        to_us_opt(instance.complete_time),
        instance.fingerprint,
    )


def workflow_from_row(
    row: tuple[Any, ...], pointers: list[ExecutionPointer] | None = None
) -> WorkflowInstance:
    """A :class:`WorkflowInstance` from a row of :data:`WORKFLOW_COLUMNS`."""
    return WorkflowInstance(
        id=row[0],
        definition_id=row[1],
        version=row[2],
        description=row[3],
        reference=row[4],
        status=WorkflowStatus(row[5]),
        data=loads(row[6]),
        execution_pointers=[] if pointers is None else pointers,
        next_execution=from_us_opt(row[7]),
        create_time=from_us(row[8]),
        complete_time=from_us_opt(row[9]),
        fingerprint=row[10],
    )


EVENT_COLUMNS = "id, name, key, data, time, processed"


def event_params(ev: Event) -> tuple[Any, ...]:
    return (ev.id, ev.name, ev.key, dumps(ev.data), to_us(ev.time), int(ev.processed))


def event_from_row(row: tuple[Any, ...]) -> Event:
    return Event(
        id=row[0],
        name=row[1],
        key=row[2],
        data=loads(row[3]),
        time=from_us(row[4]),
        processed=bool(row[5]),
    )


SUBSCRIPTION_COLUMNS = (
    "id, workflow_id, step_id, pointer_id, event_name, event_key, as_of, terminated"
)


def subscription_params(sub: EventSubscription) -> tuple[Any, ...]:
    return (
        sub.id,
        sub.workflow_id,
        sub.step_id,
        sub.pointer_id,
        sub.event_name,
        sub.event_key,
        to_us(sub.as_of),
        int(sub.terminated),
    )


def subscription_from_row(row: tuple[Any, ...]) -> EventSubscription:
    return EventSubscription(
        id=row[0],
        workflow_id=row[1],
        step_id=row[2],
        pointer_id=row[3],
        event_name=row[4],
        event_key=row[5],
        as_of=from_us(row[6]),
        terminated=bool(row[7]),
    )
