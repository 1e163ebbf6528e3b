"""The workflow host: runs workflows from a store, on trio, inside ``async with``."""

from __future__ import annotations

import collections
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self

import attrs
import trio

from wfe.core import (
    ConfigurationError,
    DataSerializationError,
    Event,
    ExecutionError,
    ExecutionPointer,
    ExecutionResult,
    LifecycleEvent,
    ProviderError,
    StepBody,
    StepExecutionContext,
    StoreLostError,
    WorkflowError,
    WorkflowInstance,
    WorkflowNotFoundError,
    WorkflowResumed,
    WorkflowStarted,
    WorkflowStatus,
    WorkflowSuspended,
    WorkflowTerminated,
    WorkflowTimeoutError,
    serialization,
)
from wfe.core.discovery import load_provider
from wfe.core.executor import Command, as_utc
from wfe.core.memory import MemorySearchIndex
from wfe.core.protocols import (
    DistributedLockProvider,
    LifecycleEventPublisher,
    Page,
    PersistenceProvider,
    ProvidesCompanions,
    QueueKind,
    QueueProvider,
    SearchFilters,
    SearchIndex,
    StepLogStore,
    WorkflowChangeFeed,
)
from wfe.core.secrets import SecretVault, using_secrets

from ._config import HostConfig
from ._dispatch import ENDED, Dispatcher
from ._ended import StoredEnd
from ._health import HostStatistics
from ._hub import LifecycleHub
from ._middleware import run_pre
from ._registry import DefinitionRegistry
from ._retention import DEFAULT_STATUSES, PurgeReport, cutoff, purge
from ._services import HostServices
from ._steplogs import StepLogWriter

step_log = logging.getLogger("wfe.host.steps")
"""Where the host logs each step error (a warning naming the workflow and the step)."""

# wait_for_workflow's first look again at a workflow another host may be running (then
# doubling up to the poll interval): soon without a change feed, later with one.
_FIRST_POLL = 0.05
_FIRST_POLL_WITH_FEED = 1.0


class WorkflowHost:
    """Runs registered workflows against a store; use it as ``async with host:``.

    While entered, the host consumes the workflow, event and index queues, polls the
    store for due work (so nothing is lost when a queue item is), and wakes sleeping
    workflows on time. Leaving drains in-flight steps (up to the grace period) and
    releases leases.
    """

    def __init__(self, config: HostConfig) -> None:
        self.secrets = SecretVault()
        """Secrets given with ``start_workflow``/``resume_workflow``, by workflow id: in
        this process's memory only (see :mod:`wfe.core.secrets`)."""
        # Outermost step middleware: a step sees its own workflow's secrets.
        config = attrs.evolve(
            config,
            step_middleware=[self._with_secrets, *config.step_middleware],
        )
        self._step_logs: StepLogWriter | None = None
        self.config = config
        self.registry = DefinitionRegistry()
        for d in config.definitions:
            self.registry.register(d)
        self.clock = config.clock
        self.persistence: PersistenceProvider = None  # type: ignore[assignment]
        self.locks: DistributedLockProvider = None  # type: ignore[assignment]
        self.queues: QueueProvider = None  # type: ignore[assignment]
        self.search_index: SearchIndex | None = None
        self._hub = LifecycleHub(config.lifecycle_history)
        self._stack: contextlib.AsyncExitStack | None = None
        self._nursery: trio.Nursery | None = None
        self._dispatcher: Dispatcher | None = None
        # wait_for_workflow's waiters by workflow id: a status change wakes only the
        # callers waiting for that workflow (each then reads one row, not every waiter).
        self._waiters: dict[str, trio.Event] = {}
        # Callers in wait_for_workflow by workflow id, and the stored end of a workflow
        # run here that some of them were waiting for when it ended (see _ended.py).
        self._waiting: collections.Counter[str] = collections.Counter()
        self._ended: dict[str, StoredEnd] = {}
        self._first_poll = _FIRST_POLL
        self._publish_send: trio.MemorySendChannel[LifecycleEvent] | None = None
        self._publishers: list[LifecycleEventPublisher] = []
        # Called with a workflow id whenever a change feed reports it changed elsewhere
        # (the dashboard's live updates listen here).
        self._change_listeners: list[Callable[[str], None]] = []

    # -- lifecycle --------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._stack is not None:
            raise ConfigurationError("this WorkflowHost is already running")
        stack = contextlib.AsyncExitStack()
        await stack.__aenter__()
        try:
            await self._open_providers(stack)
            self._nursery = await stack.enter_async_context(trio.open_nursery())
            limits = self.config.step_log_limits
            if isinstance(self.persistence, StepLogStore) and limits.max_lines > 0:
                self._step_logs = StepLogWriter(self.persistence, limits, self.clock)
            self._dispatcher = Dispatcher(
                HostServices(
                    config=self.config,
                    persistence=self.persistence,
                    locks=self.locks,
                    queues=self.queues,
                    search_index=self.search_index,
                    clock=self.clock,
                    registry=self.registry,
                    publish=self._publish,
                    start_workflow=self.start_workflow,
                    ended_here=self._ended_here,
                    step_log=None if self._step_logs is None else self._step_logs.add,
                )
            )
            self._publishers = self._lifecycle_publishers()
            if self._publishers:
                send, receive = trio.open_memory_channel[LifecycleEvent](math.inf)
                self._publish_send = send
                self._nursery.start_soon(self._forward_lifecycle, receive)
            feeds = self._change_feeds()
            for feed in feeds:
                self._nursery.start_soon(feed.watch_workflows, self._changed_elsewhere)
            # Other hosts' changes wake waiters through a feed; polling only covers the
            # moments it is disconnected, so it can start slowly (many waiters, each
            # reading its row every 50 ms at first, would load the store for nothing).
            self._first_poll = _FIRST_POLL_WITH_FEED if feeds else _FIRST_POLL
            if self._step_logs is not None:
                self._nursery.start_soon(self._step_logs.serve)
            await self._nursery.start(self._dispatcher.serve)
        except BaseException:
            await stack.__aexit__(None, None, None)
            raise
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        if stack is None:
            return
        try:
            if self._dispatcher is not None:
                await self._dispatcher.drain(self.config.grace_period)
            if self._publish_send is not None:
                await self._publish_send.aclose()
            self._hub.close()
            if self._nursery is not None:
                self._nursery.cancel_scope.cancel()
        finally:
            # The body's own exception is not handed to the host's nursery: it would come
            # back wrapped in an ExceptionGroup. It propagates unchanged from here.
            try:
                await stack.__aexit__(None, None, None)
            except BaseExceptionGroup as group:
                # A lost store stopped the host: say that, not "a task group failed".
                lost, _ = group.split(StoreLostError)
                if lost is None:
                    raise
                raise _first_leaf(lost) from group

    async def _open_providers(self, stack: contextlib.AsyncExitStack) -> None:
        cfg = self.config
        persistence = load_provider("wfe.persistence", cfg.persistence, **cfg.persistence_options)
        self.persistence = await stack.enter_async_context(persistence)  # type: ignore[arg-type]
        await self.persistence.ensure_store_exists()
        companions = persistence if isinstance(persistence, ProvidesCompanions) else None

        async def open_one(group: str, spec: Any, options: dict[str, Any], fallback: Any) -> Any:
            provider: Any = fallback if spec is None else load_provider(group, spec, **options)
            if provider is None:
                return None
            return await stack.enter_async_context(provider)

        self.locks = await open_one(
            "wfe.locks",
            cfg.locks,
            cfg.locks_options,
            (companions.default_locks() if companions else None)
            or load_provider("wfe.locks", "memory"),
        )
        self.queues = await open_one(
            "wfe.queues",
            cfg.queues,
            cfg.queues_options,
            (companions.default_queues() if companions else None)
            or load_provider("wfe.queues", "memory"),
        )
        self.search_index = await open_one(
            "wfe.search",
            cfg.search,
            cfg.search_options,
            (companions.default_search() if companions else None) or MemorySearchIndex(),
        )
        # Publishers that hold resources (a Valkey publisher's connection pool) open and
        # close with the host, each once however often it was given.
        entered: list[Any] = [self.persistence, self.locks, self.queues, self.search_index]
        for publisher in cfg.publishers:
            if isinstance(publisher, contextlib.AbstractAsyncContextManager) and not any(
                publisher is seen for seen in entered
            ):
                entered.append(publisher)
                await stack.enter_async_context(publisher)

    async def _forward_lifecycle(self, receive: trio.MemoryReceiveChannel[LifecycleEvent]) -> None:
        async with receive:
            async for event in receive:
                for publisher in self._publishers:
                    with contextlib.suppress(Exception):
                        await publisher.publish(event)

    def _lifecycle_publishers(self) -> list[LifecycleEventPublisher]:
        """The configured publishers, then the lock and queue providers that publish
        lifecycle events themselves (a lock service telling other hosts about status
        changes, so configuring it alone gives cross-host wake-ups)."""
        publishers: list[LifecycleEventPublisher] = list(self.config.publishers)
        for provider in (self.locks, self.queues):
            if isinstance(provider, LifecycleEventPublisher) and not any(
                provider is seen for seen in publishers
            ):
                publishers.append(provider)
        return publishers

    def _change_feeds(self) -> list[WorkflowChangeFeed]:
        """The distinct providers that can tell this host about other hosts' changes."""
        candidates = [self.persistence, self.locks, self.queues, self.search_index]
        feeds: list[WorkflowChangeFeed] = []
        for provider in [*candidates, *self.config.publishers]:
            if isinstance(provider, WorkflowChangeFeed) and not any(
                provider is seen for seen in feeds
            ):
                feeds.append(provider)
        return feeds

    def _changed_elsewhere(self, workflow_id: str) -> None:
        """A change feed saw ``workflow_id`` change status, maybe on another host."""
        self._wake_waiters(workflow_id)
        for listener in list(self._change_listeners):
            listener(workflow_id)

    def _wake_waiters(self, workflow_id: str) -> None:
        waiters = self._waiters.pop(workflow_id, None)
        if waiters is not None:
            waiters.set()

    def _publish(self, event: LifecycleEvent) -> None:
        """Publish a lifecycle event, in order, without blocking."""
        self._hub.publish(event)
        if isinstance(event, WorkflowError):
            # Step errors are otherwise only stored: a step failing under retries would
            # be silent until the workflow gives up (the message names the step).
            step_log.warning("workflow %s: %s", event.workflow_instance_id, event.message)
        if self._publish_send is not None:
            with contextlib.suppress(trio.ClosedResourceError):
                self._publish_send.send_nowait(event)
        if (
            isinstance(
                event, WorkflowStarted | WorkflowSuspended | WorkflowResumed | WorkflowTerminated
            )
            or type(event).__name__ == "WorkflowCompleted"
        ):
            self._wake_waiters(event.workflow_instance_id)
        if isinstance(event, WorkflowTerminated) or type(event).__name__ == "WorkflowCompleted":
            self.secrets.forget(event.workflow_instance_id)

    def statistics(self) -> HostStatistics:
        """The host's health now: workflows running, background loops failing (a store
        that is full, read-only or restarting: they retry with backoff), and the store
        errors seen since it started."""
        return self._require_running().health.snapshot(len(self._require_running().runs))

    def _require_running(self) -> Dispatcher:
        if self._dispatcher is None or self._stack is None:
            raise ConfigurationError("the host is not running: use it inside 'async with host:'")
        return self._dispatcher

    # -- definitions --------------------------------------------------------------

    def register(self, definition: Any) -> None:
        """Register a workflow definition (or a compiled YAML workflow)."""
        self.registry.register(definition)

    # -- starting and events ----------------------------------------------------

    async def start_workflow(
        self,
        definition_id: str,
        version: int | None = None,
        data: Any = None,
        reference: str | None = None,
        *,
        workflow_id: str | None = None,
        enqueue: bool = True,
        secrets: Mapping[str, str] | None = None,
    ) -> str:
        """Create an instance of a registered definition and queue it; returns its id.

        Data that cannot be stored is rejected here with :class:`DataSerializationError`
        naming the offending field; nothing is stored then.

        ``workflow_id`` names the instance instead of a generated id, which makes the
        start idempotent: when an instance with that id exists already (started before,
        by this or another host), nothing is created and its id is returned, whatever
        its definition, data or status.

        ``secrets`` (name → value) are kept in this host's memory only, never stored:
        its steps read them through :func:`wfe.core.secrets.current_secrets`. Another
        process running the workflow has them only when given them again
        (:meth:`resume_workflow` or :meth:`provide_secrets`).
        """
        dispatcher = self._require_running()
        if workflow_id is not None and await self._exists(workflow_id):
            return workflow_id
        definition = self.registry.find(definition_id, version)
        data_type = definition.data_type
        if data is None and data_type is not None:
            data = data_type()
        data = serialization.restore(data, data_type)
        if definition.data_validator is not None:
            definition.data_validator(data)
        stored = serialization.dumps(data)
        now = self.clock.now()
        first = definition.steps[0]
        instance = WorkflowInstance(
            definition_id=definition.id,
            version=definition.version,
            description=definition.description,
            reference=reference,
            data=data,
            next_execution=now if enqueue else now + self.config.lease_ttl,
            create_time=now,
            fingerprint=self.registry.fingerprint(definition),
            execution_pointers=[
                ExecutionPointer(step_id=first.id, step_name=first.name, sequence=1)
            ],
        )
        if workflow_id is not None:
            instance.id = workflow_id
        if secrets:
            self.secrets.provide(instance.id, secrets)
        pre = self.config.workflow_middleware.get("pre")
        if pre:
            # May change the data or raise to reject; what it leaves must be storable.
            await run_pre(pre, instance)
            stored = serialization.dumps(instance.data)
        # With a free workflow slot it runs here at once, under a lease taken now.
        try:
            new = await dispatcher.create_new(instance, run_here=enqueue)
        except ProviderError:
            if workflow_id is not None and await self._exists(workflow_id):
                return workflow_id  # started concurrently by another caller
            raise
        self._publish(WorkflowStarted(**_fields(instance, now)))
        if new is not None:
            # Indexed by its run (when its pass ends, or while it still runs).
            await dispatcher.run_new(new, _as_stored(instance, stored, data_type))
            return instance.id
        if enqueue:
            await self.queues.enqueue(QueueKind.WORKFLOW, instance.id)
        await dispatcher.request_index(instance.id)
        return instance.id

    async def _exists(self, workflow_id: str) -> bool:
        try:
            await self.persistence.get_workflow(workflow_id, with_pointers=False)
        except WorkflowNotFoundError:
            return False
        except DataSerializationError:
            return True  # stored, though its data cannot be read here
        return True

    async def publish_event(
        self,
        name: str,
        key: Any,
        data: Any = None,
        effective_date: datetime | None = None,
    ) -> str:
        """Store an event and deliver it to every workflow waiting for ``name``/``key``.

        On a host that runs workflows the delivery is usually made before this returns
        (by this host, at once, unless many are under way: then it is queued). An
        event nobody waits for yet stays pending for the next matching ``wait_for``.
        """
        dispatcher = self._require_running()
        serialization.dumps(data, "data")
        event = Event(
            name=name,
            key=str(key),
            data=data,
            time=as_utc(effective_date) if effective_date else self.clock.now(),
        )
        if not await dispatcher.publish_new(event):
            await self.queues.enqueue(QueueKind.EVENT, event.id)
        return event.id

    # -- control ------------------------------------------------------------------

    async def suspend_workflow(self, workflow_id: str) -> bool:
        """Stop scheduling a RUNNABLE workflow's steps; ``True`` if it was suspended."""
        return await self._require_running().control(workflow_id, Command.SUSPEND)

    async def resume_workflow(
        self, workflow_id: str, *, secrets: Mapping[str, str] | None = None
    ) -> bool:
        """Make a SUSPENDED workflow runnable again; a failed step runs again.
        ``secrets`` are given to its steps from now on (as with :meth:`start_workflow`),
        also when it was not suspended."""
        if secrets:
            self.secrets.provide(workflow_id, secrets)
        return await self._require_running().control(workflow_id, Command.RESUME)

    def provide_secrets(self, workflow_id: str, secrets: Mapping[str, str]) -> None:
        """Give a workflow's secrets to this host (kept in memory only)."""
        self.secrets.provide(workflow_id, secrets)

    async def _with_secrets(
        self,
        ctx: StepExecutionContext,
        body: StepBody,
        proceed: Callable[[], Awaitable[ExecutionResult | None]],
    ) -> ExecutionResult | None:
        if not self.secrets:
            return await proceed()  # no workflow of this host was given secrets
        with using_secrets(self.secrets.get(ctx.workflow.id)):
            return await proceed()

    async def terminate_workflow(self, workflow_id: str) -> bool:
        """End a workflow that has not finished; ``True`` if it was terminated."""
        return await self._require_running().control(workflow_id, Command.TERMINATE)

    # -- reading ----------------------------------------------------------------------

    async def get_workflow(self, workflow_id: str) -> WorkflowInstance:
        """The instance, with its data restored to the definition's data type."""
        return self._restored(await self.persistence.get_workflow(workflow_id))

    def _restored(self, instance: WorkflowInstance) -> WorkflowInstance:
        """``instance`` as read, its data restored to the definition's data type."""
        definition = self.registry.get(instance.definition_id, instance.version)
        if definition is not None:
            instance.data = serialization.restore(instance.data, definition.data_type)
        return instance

    async def get_errors(self, workflow_id: str) -> list[ExecutionError]:
        """Every error recorded for the workflow, oldest first."""
        return await self.persistence.get_errors(workflow_id)

    async def wait_for_workflow(
        self, workflow_id: str, timeout: float | timedelta | None = None
    ) -> WorkflowInstance:
        """Wait until the workflow is no longer RUNNABLE (complete, terminated or
        suspended) and return it; :class:`WorkflowTimeoutError` after ``timeout`` s."""
        seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
        deadline = math.inf if seconds is None else trio.current_time() + seconds
        dispatcher = self._require_running()
        self._waiting[workflow_id] += 1
        try:
            return await self._wait_for(dispatcher, workflow_id, seconds, deadline)
        finally:
            # The last look leaves its Event behind, and a workflow that has ended
            # changes no more, so nothing would pop it: one Event per waited workflow,
            # for the host's life. Dropped here unless another waiter is on it.
            left = self._waiters.get(workflow_id)
            if left is not None and left.statistics().tasks_waiting == 0:
                del self._waiters[workflow_id]
            self._waiting[workflow_id] -= 1
            if self._waiting[workflow_id] <= 0:
                del self._waiting[workflow_id]
                self._ended.pop(workflow_id, None)

    def _ended_here(self, instance: WorkflowInstance) -> None:
        """``instance`` ended on this host, its final checkpoint stored: keep its
        stored form for the callers waiting for it now (none: nothing is kept)."""
        if self._waiting.get(instance.id):
            self._ended[instance.id] = StoredEnd.of(instance)

    async def _wait_for(
        self, dispatcher: Dispatcher, workflow_id: str, seconds: float | None, deadline: float
    ) -> WorkflowInstance:
        poll = min(self._first_poll, self.config.poll_interval.total_seconds())
        while True:
            ended = self._ended.get(workflow_id)
            if ended is not None:
                # Ended here while waited for: its stored form, not a read of it.
                return self._restored(ended.decode())
            # Taken before looking, so a change in between is not missed.
            changed = self._waiters.get(workflow_id)
            if changed is None:
                changed = self._waiters[workflow_id] = trio.Event()
            run = dispatcher.runs.get(workflow_id)
            if workflow_id in dispatcher.starting:
                # Just created here and about to run here: RUNNABLE, nothing to read.
                with trio.move_on_at(min(deadline, trio.current_time() + poll)):
                    await changed.wait()
            elif run is not None and run.instance.status is WorkflowStatus.RUNNABLE:
                # Running here: its status changes are published locally, so wait for
                # one instead of re-reading (and re-loading the history of) the instance.
                with trio.move_on_at(deadline):
                    await changed.wait()
            elif run is not None and run.instance.status in ENDED and not run.end_stored:
                # Ending here, its final checkpoint in flight: once stored, the end is
                # published, and kept for this caller (the first look above). Should
                # the write fail, the run goes: the next look reads the store. Once
                # stored, the run may stay a while (post middleware, its lease given
                # back) with nothing more to publish: the look below reads the store.
                with trio.move_on_at(min(deadline, trio.current_time() + poll)):
                    await changed.wait()
            else:
                if run is not None:
                    # Run here and ended (or suspended) by it: the whole instance at once,
                    # not its status first. It is stored before the change is published;
                    # read a moment early, it is still RUNNABLE: wait as below.
                    instance = await self.get_workflow(workflow_id)
                    if instance.status is not WorkflowStatus.RUNNABLE:
                        return instance
                else:
                    row = await self.persistence.get_workflow(workflow_id, with_pointers=False)
                    if row.status is not WorkflowStatus.RUNNABLE:
                        return await self.get_workflow(workflow_id)
                with trio.move_on_at(min(deadline, trio.current_time() + poll)):
                    await changed.wait()
                # Changes made by other hosts are seen by polling, at most every poll_interval.
                poll = min(poll * 2, self.config.poll_interval.total_seconds())
            if trio.current_time() >= deadline:
                instance = await self.get_workflow(workflow_id)
                if instance.status is not WorkflowStatus.RUNNABLE:
                    return instance
                errors = await self.persistence.get_errors(workflow_id)
                last = f"; its last error: {errors[-1].message}" if errors else ""
                raise WorkflowTimeoutError(
                    f"workflow {workflow_id} still {instance.status.value} after {seconds} s{last}"
                )

    async def search(
        self,
        terms: str = "",
        filters: SearchFilters | Mapping[str, Any] | None = None,
        skip: int = 0,
        take: int = 100,
    ) -> Page:
        """Full-text search over workflows (reference, description, definition, status, data)."""
        if self.search_index is None:
            raise ConfigurationError("no search index is configured")
        if filters is not None and not isinstance(filters, SearchFilters):
            try:
                filters = SearchFilters(**dict(filters))
            except TypeError as exc:
                names = ", ".join(f.name for f in attrs.fields(SearchFilters))
                raise ConfigurationError(f"unknown search filter: {exc}; use {names}") from exc
        return await self.search_index.search(terms, filters, skip, take)

    async def purge(
        self,
        older_than: timedelta | datetime,
        statuses: Sequence[WorkflowStatus] = DEFAULT_STATUSES,
        *,
        dry_run: bool = False,
        batch: int = 500,
    ) -> PurgeReport:
        """Remove workflows that ended more than ``older_than`` ago (or before a date)
        and whose status is one of ``statuses`` — with their pointers, subscriptions,
        errors and search entries — plus processed events as old; running workflows are
        never touched. Works in bounded batches; ``dry_run`` only counts."""
        self._require_running()
        before = cutoff(older_than, self.clock.now())
        return await purge(
            self.persistence, self.search_index, before, statuses, dry_run=dry_run, batch=batch
        )

    def lifecycle_events(self, *, replay: bool = True) -> AsyncIterator[LifecycleEvent]:
        """Lifecycle events in order: the recent history (with ``replay``), then live ones,
        until the host stops."""
        return self._hub.iterate(replay)

    async def list_workflows(
        self,
        *,
        status: WorkflowStatus | None = None,
        definition_id: str | None = None,
        skip: int = 0,
        take: int = 100,
    ) -> list[WorkflowInstance]:
        """Stored workflows, newest first (without pointers)."""
        return await self.persistence.list_workflows(
            status=status, definition_id=definition_id, skip=skip, take=take
        )


def _first_leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


def _as_stored(instance: WorkflowInstance, stored: str, data_type: type | None) -> WorkflowInstance:
    """A copy of a just-created ``instance`` for its first run, sharing no mutable
    object with it: the caller's data object stays the caller's (the store keeps a copy
    too), so a step's change to the data is not seen by whoever passed it in."""
    return attrs.evolve(
        instance,
        data=serialization.restore(serialization.loads(stored), data_type),
        execution_pointers=[attrs.evolve(p) for p in instance.execution_pointers],
    )


def _fields(instance: WorkflowInstance, now: datetime) -> dict[str, Any]:
    return {
        "workflow_instance_id": instance.id,
        "definition_id": instance.definition_id,
        "version": instance.version,
        "reference": instance.reference,
        "time": now,
    }
