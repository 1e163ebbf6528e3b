"""``wfe validate``, ``list``, ``show``, ``suspend``, ``terminate`` and ``publish``: commands
that read or change the store without running workflows."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from wfe.core import (
    ExecutionError,
    ExecutionPointer,
    WorkflowInstance,
    WorkflowNotFoundError,
    WorkflowStatus,
)

from ._cli_safety import escape_controls
from ._cli_setup import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    Store,
    open_control,
    yaml_module,
)
from ._cli_view import seconds


def validate(files: Sequence[str], config: Mapping[str, Any]) -> int:
    """Every issue of every file as ``file:line:col: key: message``; 0 when all are
    valid, 1 when any has issues, 2 when a file cannot be read."""
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
        issues = yaml.validate(path, dict(config))
        if issues:
            invalid = True
            for issue in issues:
                print(str(issue))
        else:
            print(f"{file}: ok")
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


def _json_value(value: Any) -> Any:
    try:
        return json.loads(json.dumps(value, default=str))
    except (TypeError, ValueError):
        return repr(value)


async def list_workflows(store: Store, status: str | None, take: int, as_json: bool) -> int:
    """Stored workflows, newest first."""
    wanted = _status(status)
    async with open_control(store) as host:
        found = await host.list_workflows(status=wanted, take=take)
    if as_json:
        rows = [_summary(i) for i in found]
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    header = ("ID", "WORKFLOW", "STATUS", "CREATED", "COMPLETED", "REFERENCE")
    table = [header] + [
        (
            i.id,
            f"{i.definition_id} v{i.version}",
            i.status.value,
            _when(i.create_time),
            _when(i.complete_time),
            i.reference or "",
        )
        for i in found
    ]
    _print_table(table)
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
    async with open_control(store) as host:
        try:
            instance = await host.get_workflow(workflow_id)
        except WorkflowNotFoundError as exc:
            raise CliError(f"no workflow {workflow_id!r} in store {store.shown}") from exc
        errors = await host.get_errors(workflow_id)
    pointers = sorted(
        instance.execution_pointers,
        key=lambda p: (p.start_time is None, p.start_time or datetime.min, p.sequence),
    )
    names = {p.id: p.step_name or f"step {p.step_id}" for p in pointers}
    if as_json:
        out = _summary(instance)
        out["data"] = _json_value(instance.data)
        out["steps"] = [
            {
                "pointer_id": p.id,
                "step_id": p.step_id,
                "name": names[p.id],
                "status": p.status.value,
                "start_time": p.start_time.isoformat() if p.start_time else None,
                "end_time": p.end_time.isoformat() if p.end_time else None,
                "retry_count": p.retry_count,
            }
            for p in pointers
        ]
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
            p.status.value,
            _when(p.start_time),
            _duration(p),
            str(p.retry_count) if p.retry_count else "",
        )
        for p in pointers
    ]
    _print_table(table, "  ")
    if errors:
        print("errors:")
        for e in errors:
            step = f"step {names[e.pointer_id]}: " if e.pointer_id in names else ""
            lines = [escape_controls(x) for x in e.message.strip().splitlines()] or [""]
            print(f"  {_when(e.time)}  {step}{lines[0]}")
            for more in lines[1:]:
                print(f"      {more}")
    return EXIT_OK


def _error_json(e: ExecutionError, names: Mapping[str, str]) -> dict[str, Any]:
    return {
        "time": e.time.isoformat(),
        "pointer_id": e.pointer_id,
        "step": names.get(e.pointer_id or ""),
        "message": e.message,
    }


async def control(store: Store, action: str, workflow_id: str) -> int:
    """``suspend`` or ``terminate`` one workflow."""
    async with open_control(store) as host:
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
