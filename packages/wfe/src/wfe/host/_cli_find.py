"""``wfe list`` (with search, filters and paging) and ``wfe purge``."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from wfe.core import WorkflowStatus
from wfe.core.protocols import DataFilter, SearchFilters, SearchResult

from ._cli_commands import _inspect, _print_table, _status, _summary, _when
from ._cli_setup import EXIT_OK, CliError, Store, parse_value

_UNITS = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}
_DURATION = re.compile(r"(?:\d+(?:ms|s|m|h|d|w))+")
_PART = re.compile(r"(\d+)(ms|s|m|h|d|w)")


def parse_duration(text: str, option: str) -> timedelta:
    """``30d``, ``12h``, ``1h30m``, ``500ms`` as a timedelta; a CliError otherwise."""
    if not _DURATION.fullmatch(text.strip()):
        raise CliError(
            f"{option} {text!r}: expected a duration like 30d, 12h, 1h30m or 90s "
            "(units ms, s, m, h, d, w)"
        )
    return sum(
        (int(n) * _UNITS[unit] for n, unit in _PART.findall(text.strip())), start=timedelta()
    )


def parse_moment(text: str, option: str, now: datetime) -> datetime:
    """A date (``2026-11-30``), a date and time (ISO 8601; UTC unless it says), or a
    duration meaning that long ago (``7d``)."""
    if _DURATION.fullmatch(text.strip()):
        return now - parse_duration(text, option)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CliError(
            f"{option} {text!r}: expected a date (2026-11-30), a date and time "
            "(2026-11-30T08:00) or a duration ago (7d, 12h)"
        ) from None
    if isinstance(moment, datetime) and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def parse_data_filters(pairs: Sequence[str]) -> list[DataFilter]:
    """``--data field=value`` filters; the value is JSON if it parses (``n=3`` is the
    number 3, ``n='"3"'`` the string), else the text itself."""
    filters = []
    for pair in pairs:
        field, sep, raw = pair.partition("=")
        if not sep or not field.strip():
            raise CliError(f"--data {pair!r}: expected FIELD=VALUE, for example customer=Ann")
        value = parse_value(raw)
        if isinstance(value, list | dict):
            raise CliError(
                f"--data {pair!r}: the value must be a single string, number, true, false or null"
            )
        filters.append(DataFilter(field.strip(), value))
    return filters


@attrs.frozen(kw_only=True)
class ListQuery:
    """What ``wfe list`` asks for."""

    status: str | None = None
    search: str | None = None
    definition: str | None = None
    reference: str | None = None
    since: str | None = None
    until: str | None = None
    data: Sequence[str] = ()
    skip: int = 0
    take: int = 100

    @property
    def searches(self) -> bool:
        """Whether the search index answers (else the store's own listing does)."""
        return any(
            (self.search, self.definition, self.reference, self.since, self.until, self.data)
        )


async def list_workflows(store: Store, query: ListQuery, as_json: bool) -> int:
    """Stored workflows, newest first: straight from the store, or through the search
    index when terms or filters are given."""
    if query.skip < 0 or query.take < 0:
        raise CliError("--skip and --limit must not be negative")
    status = _status(query.status)
    now = datetime.now(UTC)
    filters = SearchFilters(
        status=status,
        definition_id=query.definition,
        reference=query.reference,
        created_from=None if query.since is None else parse_moment(query.since, "--since", now),
        created_to=None if query.until is None else parse_moment(query.until, "--until", now),
        data=parse_data_filters(query.data),
    )
    async with _inspect(store) as host:
        if query.searches:
            page = await host.search(query.search or "", filters, query.skip, query.take)
            rows = [_result_row(r) for r in page.items]
            total: int | None = page.total
        else:
            found = await host.list_workflows(status=status, skip=query.skip, take=query.take)
            rows = [_summary(i) for i in found]
            total = None
    if as_json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    header = ("ID", "WORKFLOW", "STATUS", "CREATED", "COMPLETED", "REFERENCE")
    _print_table(
        [header]
        + [
            (
                r["id"],
                f"{r['definition_id']} v{r['version']}",
                r["status"],
                _when(_moment(r["create_time"])),
                _when(_moment(r["complete_time"])),
                r["reference"] or "",
            )
            for r in rows
        ]
    )
    if total is not None:
        first = query.skip + 1 if rows else query.skip
        print(f"{first}-{query.skip + len(rows)} of {total}", file=sys.stderr)
    return EXIT_OK


def _moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _result_row(r: SearchResult) -> dict[str, Any]:
    return {
        "id": r.id,
        "definition_id": r.definition_id,
        "version": r.version,
        "status": r.status.value,
        "reference": r.reference,
        "create_time": r.create_time.isoformat(),
        "complete_time": r.complete_time.isoformat() if r.complete_time else None,
    }


def parse_statuses(text: str) -> list[WorkflowStatus]:
    """``COMPLETE,TERMINATED`` as statuses; RUNNABLE and unknown names refused."""
    chosen: list[WorkflowStatus] = []
    for name in (part.strip() for part in text.split(",")):
        status = _status(name) if name else None
        if status is None or status is WorkflowStatus.RUNNABLE:
            raise CliError(
                f"--status {text!r}: expected some of complete, terminated, suspended "
                "(running workflows are never purged)"
            )
        chosen.append(status)
    return chosen


async def purge(store: Store, older_than: str, statuses: str, dry_run: bool, as_json: bool) -> int:
    """Remove workflows that ended more than ``older_than`` ago."""
    age = parse_duration(older_than, "--older-than")
    chosen = parse_statuses(statuses)
    async with _inspect(store) as host:
        report = await host.purge(age, chosen, dry_run=dry_run)
    if as_json:
        print(
            json.dumps(
                {
                    "workflows": report.workflows,
                    "events": report.events,
                    "before": report.before.isoformat(),
                    "dry_run": report.dry_run,
                }
            )
        )
        return EXIT_OK
    names = ", ".join(s.value for s in chosen)
    when = report.before.strftime("%Y-%m-%d %H:%M:%S")
    if report.dry_run:
        print(f"would purge {report.workflows} workflow(s) ({names}) that ended before {when}")
    else:
        print(
            f"purged {report.workflows} workflow(s) ({names}) and {report.events} processed "
            f"event(s) from before {when}"
        )
    return EXIT_OK
