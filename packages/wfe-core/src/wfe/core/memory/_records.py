"""Stored forms of instances and pointers: every open-ended value kept as JSON text.

Storing text (not the caller's objects) makes aliasing impossible, rejects data that a
real store could not hold at write time, and makes what comes back equal to what went in.
"""

from __future__ import annotations

from typing import Any

import attrs

from .._models import Event, ExecutionPointer, WorkflowInstance
from ..serialization import dumps, loads

_POINTER_BLOBS = ("persistence_data", "event_data", "context_item", "outcome", "extension")


def _dump(value: Any, pointer_id: str, name: str) -> str:
    # Most pointer fields are empty: skip the serialiser for them (history can be long).
    if value is None:
        return "null"
    if name == "extension" and not value:
        return "{}"
    return dumps(value, f"pointers[{pointer_id}].{name}")


def _load(text: str, pointer_id: str, name: str) -> Any:
    if text == "null":
        return {} if name == "extension" else None
    if text == "{}":
        return {}
    return loads(text, f"pointers[{pointer_id}].{name}")


@attrs.frozen(kw_only=True)
class StoredPointer:
    """One pointer as stored: plain fields plus JSON text for the open-ended ones."""

    fields: dict[str, Any]
    blobs: dict[str, str]
    insertion: int

    @classmethod
    def from_pointer(cls, pointer: ExecutionPointer, insertion: int) -> StoredPointer:
        fields = attrs.asdict(pointer, recurse=False)
        blobs = {name: _dump(fields.pop(name), pointer.id, name) for name in _POINTER_BLOBS}
        fields["children"] = list(pointer.children)
        fields["scope"] = list(pointer.scope)
        return cls(fields=fields, blobs=blobs, insertion=insertion)

    @property
    def order(self) -> tuple[int, int]:
        """Stored order: by ``sequence``, ties kept in insertion order."""
        return (int(self.fields["sequence"]), self.insertion)

    def to_pointer(self) -> ExecutionPointer:
        values = dict(self.fields)
        values["children"] = list(values["children"])
        values["scope"] = list(values["scope"])
        for name, text in self.blobs.items():
            values[name] = _load(text, values["id"], name)
        return ExecutionPointer(**values)


@attrs.define(kw_only=True)
class StoredInstance:
    """One instance row (without pointers) plus its pointers by id."""

    row: WorkflowInstance
    data: str
    pointers: dict[str, StoredPointer] = attrs.field(factory=dict)
    fencing_token: int | None = None

    def to_instance(self, *, with_pointers: bool = True) -> WorkflowInstance:
        pointers: list[ExecutionPointer] = []
        if with_pointers:
            stored = sorted(self.pointers.values(), key=lambda p: p.order)
            pointers = [p.to_pointer() for p in stored]
        return attrs.evolve(self.row, data=loads(self.data), execution_pointers=pointers)


def instance_row(instance: WorkflowInstance) -> tuple[WorkflowInstance, str]:
    """The instance without data and pointers, and its data as JSON text."""
    data = dumps(instance.data)
    return attrs.evolve(instance, data=None, execution_pointers=[]), data


@attrs.frozen(kw_only=True)
class StoredEvent:
    """An event with its data as JSON text."""

    event: Event
    data: str

    @classmethod
    def from_event(cls, event: Event) -> StoredEvent:
        return cls(event=attrs.evolve(event, data=None), data=dumps(event.data, "event.data"))

    def to_event(self) -> Event:
        return attrs.evolve(self.event, data=loads(self.data, "event.data"))
