"""What the dashboard's JSON routes return: workflows, pointers, errors and logs of the
store as plain JSON values (the pages escape every one of them when they show it)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import attrs

from wfe.core import (
    ExecutionError,
    ExecutionPointer,
    PointerStatus,
    WorkflowDefinition,
    WorkflowInstance,
    WorkflowStatus,
)
from wfe.core.protocols import SearchFilters, SearchResult, StepLogLine

from .._cli_commands import _data_type, _plain, _status
from .._cli_find import parse_data_filters, parse_moment
from .._cli_pipeline import shown_pointers, step_status
from .._cli_setup import CliError

if TYPE_CHECKING:
    from .._host import WorkflowHost

MAX_TAKE = 500
"""The most rows one list request returns (a page of the dashboard shows 50)."""

LOG_PAGE = 2000
"""The most log lines one request returns (the page asks again for more)."""


class QueryError(ValueError):
    """A list query the dashboard cannot answer (its message names the parameter)."""


def _when(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max((end - start).total_seconds(), 0.0)


@attrs.frozen(kw_only=True)
class ListQuery:
    """The list page's query string, parsed: ``status``, ``q`` (search terms),
    ``definition``, ``reference``, ``since``, ``until``, ``data`` (``field=value``,
    repeatable), ``skip``, ``take``."""

    status: WorkflowStatus | None = None
    terms: str = ""
    filters: SearchFilters = attrs.field(factory=SearchFilters)
    skip: int = 0
    take: int = 50

    @property
    def searches(self) -> bool:
        """Whether the search index answers (else the store's own listing, newest first)."""
        f = self.filters
        return bool(
            self.terms or f.definition_id or f.reference or f.created_from or f.created_to or f.data
        )

    @classmethod
    def parse(cls, params: Mapping[str, str], data: Sequence[str] = ()) -> ListQuery:
        """From query parameters; :class:`QueryError` naming the bad one."""

        def number(name: str, default: int, most: int | None = None) -> int:
            raw = params.get(name, "").strip()
            if not raw:
                return default
            try:
                value = int(raw)
            except ValueError:
                raise QueryError(f"{name}={raw!r}: expected a whole number") from None
            if value < 0:
                raise QueryError(f"{name}={raw!r}: must not be negative")
            return value if most is None else min(value, most)

        def text(name: str) -> str | None:
            value = params.get(name, "").strip()
            return value or None

        now = datetime.now(UTC)
        try:
            status = _status(text("status"))
            since = text("since")
            until = text("until")
            filters = SearchFilters(
                status=status,
                definition_id=text("definition"),
                reference=text("reference"),
                created_from=None if since is None else parse_moment(since, "since", now),
                created_to=None if until is None else parse_moment(until, "until", now),
                data=parse_data_filters([d for d in data if d.strip()]),
            )
        except (CliError, TypeError, ValueError) as exc:
            # The command line's parsing messages, without its option dashes.
            raise QueryError(str(exc).replace("--", "")) from exc
        return cls(
            status=status,
            terms=params.get("q", "").strip(),
            filters=filters,
            skip=number("skip", 0),
            take=max(number("take", 50, MAX_TAKE), 1),
        )


def _row(
    *,
    id: str,
    definition_id: str,
    version: int,
    status: WorkflowStatus,
    reference: str | None,
    description: str | None,
    create_time: datetime | None,
    complete_time: datetime | None,
) -> dict[str, Any]:
    return {
        "id": id,
        "definition_id": definition_id,
        "version": version,
        "status": status.value,
        "reference": reference,
        "description": description,
        "create_time": _when(create_time),
        "complete_time": _when(complete_time),
        "duration": _seconds(create_time, complete_time),
    }


def instance_row(i: WorkflowInstance) -> dict[str, Any]:
    """One line of the list page."""
    return _row(
        id=i.id,
        definition_id=i.definition_id,
        version=i.version,
        status=i.status,
        reference=i.reference,
        description=i.description,
        create_time=i.create_time,
        complete_time=i.complete_time,
    )


def result_row(r: SearchResult) -> dict[str, Any]:
    """One line of the list page, from the search index."""
    return _row(
        id=r.id,
        definition_id=r.definition_id,
        version=r.version,
        status=r.status,
        reference=r.reference,
        description=r.description,
        create_time=r.create_time,
        complete_time=r.complete_time,
    )


async def list_page(host: WorkflowHost, query: ListQuery) -> dict[str, Any]:
    """A page of workflows, newest first: the store's listing (status filter only; one
    row more than asked tells whether there is a next page) or the search index (with
    the total of matches)."""
    if query.searches:
        page = await host.search(query.terms, query.filters, query.skip, query.take)
        rows = [result_row(r) for r in page.items]
        total: int | None = page.total
        more = query.skip + len(rows) < page.total
    else:
        found = await host.persistence.list_workflows(
            status=query.status, skip=query.skip, take=query.take + 1
        )
        more = len(found) > query.take
        rows = [instance_row(i) for i in found[: query.take]]
        total = None
    return {
        "items": rows,
        "total": total,
        "skip": query.skip,
        "take": query.take,
        "more": more,
        "searched": query.searches,
    }


# -- one workflow ----------------------------------------------------------------------


def pointer_row(p: ExecutionPointer, name: str, data: Any) -> dict[str, Any]:
    """One bar of the step timeline."""
    return {
        "pointer_id": p.id,
        "step_id": p.step_id,
        "name": name,
        "status": step_status(p, data),
        "start_time": _when(p.start_time),
        "end_time": _when(p.end_time),
        "duration": _seconds(p.start_time, p.end_time),
        "retry_count": p.retry_count,
        "sleep_until": _when(p.sleep_until),
        "active": p.active,
        "predecessor_id": p.predecessor_id,
        "scope": list(p.scope),
        "context_item": _plain(p.context_item),
        "outcome": _plain(p.outcome),
    }


def subscriptions(pointers: Sequence[ExecutionPointer], names: Mapping[str, str]) -> list[Any]:
    """The events the workflow waited for (each ``wait_for`` pointer): waiting, or
    received with the event's data."""
    out: list[dict[str, Any]] = []
    for p in pointers:
        if p.event_name is None:
            continue
        received = p.event_published
        if received:
            state = "received"
        elif p.status is PointerStatus.WAITING_FOR_EVENT:
            state = "waiting"
        else:  # cancelled with its workflow, or not subscribed yet
            state = p.status.value.lower()
        out.append(
            {
                "pointer_id": p.id,
                "step": names.get(p.id),
                "event_name": p.event_name,
                "event_key": p.event_key,
                "state": state,
                "since": _when(p.start_time),
                "data": _plain(p.event_data) if received else None,
            }
        )
    return out


def error_row(e: ExecutionError, names: Mapping[str, str]) -> dict[str, Any]:
    return {
        "time": _when(e.time),
        "pointer_id": e.pointer_id,
        "step": names.get(e.pointer_id or ""),
        "message": e.message,
    }


def instance_detail(
    instance: WorkflowInstance,
    errors: Sequence[ExecutionError],
    definition: WorkflowDefinition | None,
) -> dict[str, Any]:
    """Everything the instance page shows (the app adds the graph when ``definition``
    is known here)."""
    pointers = sorted(
        instance.execution_pointers,
        key=lambda p: (p.start_time is None, p.start_time or datetime.min.replace(tzinfo=UTC)),
    )
    names = {p.id: p.step_name or f"step {p.step_id}" for p in pointers}
    data = _plain(instance.data)
    type_name, importable = _data_type(instance.data)
    steps = [pointer_row(p, names[p.id], data) for p in shown_pointers(pointers)]
    out = instance_row(instance)
    out.update(
        {
            "next_execution": _when(instance.next_execution),
            "data": data,
            "data_type": type_name,
            "data_type_importable": importable,
            "steps": steps,
            "errors": [error_row(e, names) for e in errors],
            "subscriptions": subscriptions(pointers, names),
            "definition_known": definition is not None,
            "now": datetime.now(UTC).isoformat(),
        }
    )
    return out


def signature(instance: WorkflowInstance, errors: int) -> tuple[Any, ...]:
    """What changes whenever the instance page would look different (live updates
    compare it instead of whole instances)."""
    return (
        instance.status,
        instance.complete_time,
        errors,
        tuple(
            sorted(
                (p.id, p.status, p.retry_count, p.end_time, p.event_published)
                for p in instance.execution_pointers
            )
        ),
    )


def log_row(line: StepLogLine) -> dict[str, Any]:
    return {
        "seq": line.seq,
        "pointer_id": line.pointer_id,
        "step": line.step_name,
        "attempt": line.attempt,
        "stream": line.stream,
        "line": line.line,
        "time": _when(line.time),
    }
