"""Conversions between wfe models and PostgreSQL rows.

Times become BIGINT microseconds since the epoch (UTC; a naive datetime is read as UTC)
and come back timezone-aware UTC. Data and pointer fields are the JSON text of
``wfe.core.serialization``. PostgreSQL ``text`` cannot hold a NUL character: names,
keys, references and descriptions containing one are refused with an error naming the
field (JSON data escapes NUL, so data is unaffected); error messages, which are
diagnostics, have it replaced by U+FFFD.
"""

from __future__ import annotations

import json
from typing import Any

from wfe.core import (
    DataSerializationError,
    Event,
    EventSubscription,
    ExecutionPointer,
    PointerStatus,
    WorkflowInstance,
    WorkflowStatus,
)
from wfe.core.serialization import dumps, loads

# Re-exported for the modules that use this codec: the stores' time columns, and a
# pointer's JSON body (shared by every store).
from wfe.core.serialization import from_us as from_us
from wfe.core.serialization import from_us_opt as from_us_opt
from wfe.core.serialization import pointer_body as pointer_body
from wfe.core.serialization import pointer_from_body as pointer_from_body
from wfe.core.serialization import to_us as to_us
from wfe.core.serialization import to_us_opt as to_us_opt


def text(value: str | None, what: str) -> str | None:
    """``value`` for a ``text`` column; refuses NUL, which PostgreSQL text cannot hold."""
    if value is not None and "\x00" in value:
        raise DataSerializationError(
            f"cannot store {what} in PostgreSQL: it contains a NUL character (\\x00), "
            "which PostgreSQL text cannot hold",
            what,
        )
    return value


def message(value: str) -> str:
    return value.replace("\x00", "\ufffd")


def receive_event(body: str, event_data: str | None) -> str | None:
    """A stored pointer body after it receives an event whose stored data is
    ``event_data``; ``None`` when the pointer does not wait for one. Works on the JSON
    itself, so no data class named in it is imported."""
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
    """Values for :data:`WORKFLOW_COLUMNS`, in order; ``data_json``, when given, is the
    instance's data already serialised by ``wfe.core.serialization.dumps``."""
    wid = instance.id
    return (
        text(instance.id, "the workflow id"),
        text(instance.definition_id, f"the definition id of workflow {wid}"),
        instance.version,
        text(instance.description, f"the description of workflow {wid}"),
        text(instance.reference, f"the reference of workflow {wid}"),
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
    return (
        text(ev.id, "the event id"),
        text(ev.name, f"the name of event {ev.id}"),
        text(ev.key, f"the key of event {ev.id}"),
        dumps(ev.data, "event data"),
        to_us(ev.time),
        bool(ev.processed),
    )


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
        text(sub.event_name, f"the event name of subscription {sub.id}"),
        text(sub.event_key, f"the event key of subscription {sub.id}"),
        to_us(sub.as_of),
        bool(sub.terminated),
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
