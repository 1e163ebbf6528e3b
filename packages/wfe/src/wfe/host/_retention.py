"""Retention: removing ended workflows from the store and the search index."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

import attrs
import trio

from wfe.core import ConfigurationError, WorkflowStatus
from wfe.core.executor import as_utc
from wfe.core.protocols import PersistenceProvider, SearchIndex, check_purge_statuses

log = logging.getLogger("wfe.host")

DEFAULT_STATUSES = (WorkflowStatus.COMPLETE, WorkflowStatus.TERMINATED)


@attrs.frozen
class PurgeReport:
    """What a purge removed (or, for a dry run, would remove)."""

    workflows: int
    events: int
    before: datetime
    dry_run: bool = False


def cutoff(older_than: timedelta | datetime, now: datetime) -> datetime:
    """The moment before which ended instances go: ``now - older_than`` or a date."""
    if isinstance(older_than, datetime):
        return as_utc(older_than)
    if not isinstance(older_than, timedelta) or older_than < timedelta(0):
        raise ConfigurationError(
            f"older_than must be a non-negative timedelta or a datetime, got {older_than!r}"
        )
    return now - older_than


async def purge(
    persistence: PersistenceProvider,
    search_index: SearchIndex | None,
    before: datetime,
    statuses: Sequence[WorkflowStatus],
    *,
    dry_run: bool,
    batch: int,
) -> PurgeReport:
    """Delete ended instances and processed events older than ``before`` in batches
    of ``batch``, each batch one store transaction, then its index entries.

    Safe to run on several hosts at once and to interrupt between batches: every
    batch stands alone. The index entries of a batch are removed right after the
    store's transaction; if that fails, the purge stops with the error and the log
    names the instances whose entries are left (searches may list them, and reading
    them says they no longer exist)."""
    chosen = check_purge_statuses(statuses)
    if batch < 1:
        raise ConfigurationError(f"purge batch must be at least 1, got {batch}")
    if dry_run:
        count = await persistence.count_purgeable(before, chosen)
        return PurgeReport(workflows=count, events=0, before=before, dry_run=True)
    workflows = events = 0
    while True:
        ids = await persistence.purge_workflows(before, chosen, batch)
        if search_index is not None and ids:
            try:
                await search_index.remove(ids)
            except BaseException:
                log.error("purged workflows still in the search index: %s", ", ".join(ids))
                raise
        workflows += len(ids)
        if len(ids) < batch:
            break
        await trio.lowlevel.checkpoint()
    while True:
        removed = await persistence.purge_events(before, batch)
        events += removed
        if removed < batch:
            break
        await trio.lowlevel.checkpoint()
    log.info("purged %d workflow(s) and %d event(s) ended before %s", workflows, events, before)
    return PurgeReport(workflows=workflows, events=events, before=before)
