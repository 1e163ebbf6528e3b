"""``wfe validate``, ``list``, ``show``, ``suspend``, ``terminate`` and ``publish``: commands
that read or change the store without running workflows."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from wfe.core import (
    DataSerializationError,
    ExecutionError,
    ExecutionPointer,
    WorkflowInstance,
    WorkflowNotFoundError,
    WorkflowStatus,
)
from wfe.core.serialization import StoredValue, from_jsonable, opaque_types

from . import _cli_pipeline as pipeline
from ._cli_safety import escape_controls
from ._cli_setup import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_STORE,
    EXIT_USAGE,
    CliError,
    Store,
    open_control,
    yaml_module,
)
from ._cli_view import seconds

if TYPE_CHECKING:
    from ._host import WorkflowHost


@contextlib.asynccontextmanager
async def _inspect(store: Store) -> AsyncIterator[WorkflowHost]:
    """A control host whose reads never import a workflow's data class: data of a class
    this process cannot import (a ``__main__`` class, a module not on the path) comes
    back as its stored JSON, and is written back unchanged by control commands."""
    with opaque_types():
        try:
            async with open_control(store) as host:
                yield host
        except DataSerializationError as exc:
            raise CliError(
                f"store {store.url}: unreadable workflow data: {exc}", EXIT_STORE
            ) from exc


def validate(files: Sequence[str], config: Mapping[str, Any]) -> int:
    """Every issue of every file as ``file:line:col: key: message`` (warnings as
    ``file:line:col: warning: message``); 0 when all are valid (warnings or not), 1 when
    any has issues, 2 when a file cannot be read."""
    yaml = yaml_module()
    unreadable = False
    invalid = False
    for file in files:
        path = Path(file)
        if not path.is_file():
            print(f"wfe: {file}: no such file", file=sys.stderr)
            unreadable = True
            continue
        try:
            path.read_bytes()
        except OSError as exc:
            print(f"wfe: {file}: cannot read: {exc.strerror}", file=sys.stderr)
            unreadable = True
            continue
        warnings: list[Any] = []
        issues = yaml.validate(path, dict(config), warnings=warnings)
        for issue in issues:
            print(str(issue))
        for warning in warnings:
            print(f"{warning.file}:{warning.line}:{warning.column}: warning: {warning.message}")
        if issues:
            invalid = True
        else:
            noted = f" ({len(warnings)} warning(s))" if warnings else ""
            print(f"{file}: ok{noted}")
    if unreadable:
        return EXIT_USAGE
    return EXIT_FAILED if invalid else EXIT_OK


def _when(t: datetime | None) -> str:
    return "" if t is None else t.strftime("%Y-%m-%d %H:%M:%S")


def _status(text: str | None) -> WorkflowStatus | None:
    if text is None:
        return None
    try:
        return WorkflowStatus(text.upper())
    except ValueError as exc:
        names = ", ".join(s.value.lower() for s in WorkflowStatus)
        raise CliError(f"--status {text!r}: expected one of {names}") from exc


def _plain(value: Any) -> Any:
    """Workflow data as plain JSON values for display: attrs instances (importable or
    not) as their fields, other non-JSON values (Decimal, datetime, ...) as text."""
    if isinstance(value, StoredValue):
        fields = value.stored.get("v") if isinstance(value.stored, dict) else value.stored
        return _plain(from_jsonable(fields))
    if attrs.has(type(value)):
        return {f.name: _plain(getattr(value, f.name)) for f in attrs.fields(type(value))}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _data_type(value: Any) -> tuple[str | None, bool]:
    """The data's class name (``module:qualname``; ``None`` for plain data) and whether
    this process can import it."""
    if isinstance(value, StoredValue):
        return value.type_name, False
    if attrs.has(type(value)):
        return f"{type(value).__module__}:{type(value).__qualname__}", True
    return None, True


_DATA_WIDTH = 400


def no_store_here(as_json: bool) -> int:
    """``wfe list`` where nothing has run: no workflows, and no store is created."""
    if as_json:
        print("[]")
    else:
        print("no workflows: no store in this directory yet (.wfe/wfe.db)", file=sys.stderr)
    return EXIT_OK


def _summary(i: WorkflowInstance) -> dict[str, Any]:
    return {
        "id": i.id,
        "definition_id": i.definition_id,
        "version": i.version,
        "status": i.status.value,
        "reference": i.reference,
        "create_time": i.create_time.isoformat() if i.create_time else None,
        "complete_time": i.complete_time.isoformat() if i.complete_time else None,
    }


def _print_table(rows: Sequence[Sequence[str]], indent: str = "") -> None:
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    for r in rows:
        cells = [cell.ljust(w) for cell, w in zip(r, widths, strict=True)]
        print((indent + "  ".join(cells)).rstrip())


def _duration(p: ExecutionPointer) -> str:
    if p.start_time is None or p.end_time is None:
        return ""
    return seconds(p.end_time - p.start_time)


async def show(store: Store, workflow_id: str, as_json: bool) -> int:
    """A workflow's step timeline (each pointer's step, status, start, duration) and
    its errors."""
    async with _inspect(store) as host:
        try:
            instance = await host.get_workflow(workflow_id)
        except WorkflowNotFoundError as exc:
            raise CliError(f"no workflow {workflow_id!r} in store {store.shown}") from exc
        errors = await host.get_errors(workflow_id)
    pointers = sorted(
        instance.execution_pointers,
        key=lambda p: (p.start_time is None, p.start_time or datetime.min, p.sequence),
    )
    names_all = {p.id: p.step_name or f"step {p.step_id}" for p in pointers}
    pointers = pipeline.shown_pointers(pointers)
    names = names_all
    type_name, importable = _data_type(instance.data)
    data = _plain(instance.data)
    skipped = pipeline.never_ran(data, pointers)
    found_artifacts = pipeline.artifacts(data)
    if as_json:
        out = _summary(instance)
        out["data"] = data
        out["data_type"] = type_name
        out["data_type_importable"] = importable
        out["steps"] = [
            {
                "pointer_id": p.id,
                "step_id": p.step_id,
                "name": names[p.id],
                "status": pipeline.step_status(p, data),
                "start_time": p.start_time.isoformat() if p.start_time else None,
                "end_time": p.end_time.isoformat() if p.end_time else None,
                "retry_count": p.retry_count,
            }
            for p in pointers
        ] + [
            {"name": r["name"], "status": "SKIPPED", "reason": r["reason"], "start_time": None}
            for r in skipped
        ]
        if pipeline.graph_state(data) is not None:
            out["graph"] = pipeline.graph_rows(data)
        out["artifacts"] = found_artifacts
        out["errors"] = [_error_json(e, names) for e in errors]
        print(json.dumps(out, indent=2))
        return EXIT_OK
    print(f"workflow {instance.id}")
    facts = [
        ("definition", f"{instance.definition_id} v{instance.version}"),
        ("status", instance.status.value),
        ("reference", instance.reference or ""),
        ("created", _when(instance.create_time)),
        ("completed", _when(instance.complete_time)),
    ]
    for label, value in facts:
        if value:
            print(f"  {label:<11}{value}")
    print("steps:")
    table = [("STEP", "STATUS", "START", "DURATION", "RETRIES")] + [
        (
            names[p.id],
            pipeline.step_status(p, data),
            _when(p.start_time),
            _duration(p),
            str(p.retry_count) if p.retry_count else "",
        )
        for p in pointers
    ]
    table += [(r["name"], f"SKIPPED ({r['reason']})", "", "", "") for r in skipped]
    _print_table(table, "  ")
    failed = [r for r in pipeline.graph_rows(data) if r["status"] == "failed"]
    if failed:
        print("failed steps:")
        for r in failed:
            reason = r["reason"].splitlines()[0] if r["reason"] else ""
            print(f"  {r['name']}: {escape_controls(reason)}")
    if found_artifacts:
        print("artifacts:")
        _print_table([(a["step"], a["name"], a["path"]) for a in found_artifacts], "  ")
    if errors:
        print("errors:")
        for e in errors:
            step = f"step {names[e.pointer_id]}: " if e.pointer_id in names else ""
            lines = [escape_controls(x) for x in e.message.strip().splitlines()] or [""]
            print(f"  {_when(e.time)}  {step}{lines[0]}")
            for more in lines[1:]:
                print(f"      {more}")
    _print_data(data, type_name, importable)
    return EXIT_OK


def _print_data(data: Any, type_name: str | None, importable: bool) -> None:
    """The data section of ``wfe show`` (after the timeline: it may be long)."""
    text = json.dumps(data, ensure_ascii=False)
    if len(text) > _DATA_WIDTH:
        text = text[: _DATA_WIDTH - 1] + "…"  # the whole value: wfe show ID --json
    if type_name is None:
        print("data:")
    elif importable:
        print(f"data ({type_name}):")
    else:
        print(f"data (stored as {type_name}, which cannot be imported here: shown as stored):")
    print(f"  {text}")


def _error_json(e: ExecutionError, names: Mapping[str, str]) -> dict[str, Any]:
    return {
        "time": e.time.isoformat(),
        "pointer_id": e.pointer_id,
        "step": names.get(e.pointer_id or ""),
        "message": e.message,
    }


async def control(store: Store, action: str, workflow_id: str) -> int:
    """``suspend`` or ``terminate`` one workflow."""
    async with _inspect(store) as host:
        try:
            instance = await host.persistence.get_workflow(workflow_id)
        except WorkflowNotFoundError as exc:
            raise CliError(f"no workflow {workflow_id!r} in store {store.shown}") from exc
        if action == "suspend":
            done = await host.suspend_workflow(workflow_id)
        else:
            done = await host.terminate_workflow(workflow_id)
    if done:
        past = "suspended" if action == "suspend" else "terminated"
        print(f"[wfe] workflow {workflow_id} {past}")
        return EXIT_OK
    print(
        f"wfe: cannot {action} workflow {workflow_id}: it is {instance.status.value}",
        file=sys.stderr,
    )
    return EXIT_FAILED


async def publish(store: Store, name: str, key: str, data: Any) -> int:
    """Store an event; whichever host runs the waiting workflow delivers it."""
    async with open_control(store) as host:
        event_id = await host.publish_event(name, key, data)
    print(f"[wfe] event {event_id} published ({name} {key})")
    return EXIT_OK
