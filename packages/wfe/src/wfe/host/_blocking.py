"""A workflow host for synchronous and asyncio programs: trio on its own thread.

``BlockingWorkflowHost`` runs a :class:`WorkflowHost` under ``trio.run`` in a
background thread and offers the same methods as plain blocking calls; each is
marshalled into the host's trio run with ``trio.from_thread.run``, and whatever it
raises there is raised again in the caller. asyncio programs call the methods
through ``asyncio.to_thread`` (or an executor) so their own loop stays free.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from functools import partial
from types import TracebackType
from typing import Any, Self, TypeVar

import trio

from wfe.core import (
    ConfigurationError,
    ExecutionError,
    LifecycleEvent,
    WfeError,
    WorkflowInstance,
    WorkflowStatus,
)
from wfe.core.protocols import Page, SearchFilters

from ._builder import WorkflowHostBuilder
from ._health import HostStatistics
from ._host import WorkflowHost
from ._retention import DEFAULT_STATUSES, PurgeReport

T = TypeVar("T")

_END = object()


class HostStoppedError(WfeError):
    """The blocking host's thread is not running (never started, stopped, or failed)."""


class BlockingWorkflowHost:
    """A :class:`WorkflowHost` on its own thread, with blocking methods.

    Construct it from a :class:`WorkflowHostBuilder` (or an un-entered
    :class:`WorkflowHost`), then use it as a context manager::

        with BlockingWorkflowHost(WorkflowHostBuilder().register(definition)) as host:
            wid = host.start_workflow("order", 1, Order(total=12.5))
            instance = host.wait_for_workflow(wid, timeout=30)

    or call :meth:`start` and :meth:`stop`. Errors raised by a call in the host thread
    are raised again in the caller; if the host itself fails, :meth:`stop` raises
    that failure and every later call raises :class:`HostStoppedError`. A host runs
    once: it cannot be started again after :meth:`stop`.
    """

    def __init__(self, host: WorkflowHostBuilder | WorkflowHost) -> None:
        if isinstance(host, WorkflowHostBuilder):
            host = host.build()
        if not isinstance(host, WorkflowHost):
            raise ConfigurationError(
                "BlockingWorkflowHost takes a WorkflowHostBuilder or a WorkflowHost, "
                f"got {type(host).__qualname__}"
            )
        self._host = host
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._nursery: trio.Nursery | None = None
        self._failure: BaseException | None = None
        self._stopped = False

    @property
    def host(self) -> WorkflowHost:
        """The wrapped async host (use its methods only from inside the host thread)."""
        return self._host

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> Self:
        """Start the host thread and wait until the host is running (providers open)."""
        if self._thread is not None:
            raise ConfigurationError("this BlockingWorkflowHost was already started")
        self._thread = threading.Thread(target=self._thread_main, name="wfe-host", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._token is None:
            self._thread.join()
            failure, self._failure = self._failure, None
            self._stopped = True
            assert failure is not None
            raise failure
        return self

    def stop(self) -> None:
        """Stop the host (draining in-flight steps) and wait for its thread to end.

        Raises the host's failure, if it failed while running. Calling it again is a no-op.
        """
        thread = self._thread
        if thread is None or self._stopped:
            return
        self._stopped = True
        if self._token is not None and self._stop is not None:
            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        thread.join()
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _thread_main(self) -> None:
        try:
            trio.run(self._serve)
        except BaseException as exc:  # reported by start()/stop() in the caller's thread
            self._failure = exc
        finally:
            self._token = None
            self._started.set()

    async def _serve(self) -> None:
        self._stop = trio.Event()
        async with self._host, trio.open_nursery() as nursery:
            self._nursery = nursery
            self._token = trio.lowlevel.current_trio_token()
            self._started.set()
            await self._stop.wait()
            nursery.cancel_scope.cancel()

    # -- marshalling ------------------------------------------------------------------

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        token = self._token
        if token is None or self._stopped:
            raise self._not_running()
        try:
            return trio.from_thread.run(partial(fn, *args, **kwargs), trio_token=token)
        except (trio.RunFinishedError, trio.Cancelled) as exc:
            raise self._not_running() from exc

    def _call_sync(self, fn: Callable[..., T], *args: Any) -> T:
        token = self._token
        if token is None or self._stopped:
            raise self._not_running()
        try:
            return trio.from_thread.run_sync(fn, *args, trio_token=token)
        except (trio.RunFinishedError, trio.Cancelled) as exc:
            raise self._not_running() from exc

    def _not_running(self) -> HostStoppedError:
        if self._thread is None:
            return HostStoppedError("the host is not running: call start() or use 'with'")
        if self._failure is not None:
            return HostStoppedError(f"the host failed: {self._failure!r}; stop() raises it")
        return HostStoppedError("the host has stopped")

    # -- the WorkflowHost API, blocking ------------------------------------------------

    def statistics(self) -> HostStatistics:
        """The host's health now (see :meth:`WorkflowHost.statistics`)."""
        return self._call_sync(self._host.statistics)

    def register(self, definition: Any) -> None:
        """Register a workflow definition (or a compiled YAML workflow)."""
        if self._token is None:
            self._host.register(definition)
        else:
            self._call_sync(self._host.register, definition)

    def start_workflow(
        self,
        definition_id: str,
        version: int | None = None,
        data: Any = None,
        reference: str | None = None,
        *,
        secrets: Mapping[str, str] | None = None,
    ) -> str:
        """Create and queue an instance; returns its id. ``secrets`` stay in memory
        (see :meth:`WorkflowHost.start_workflow`)."""
        result: str = self._call(
            self._host.start_workflow, definition_id, version, data, reference, secrets=secrets
        )
        return result

    def publish_event(
        self, name: str, key: Any, data: Any = None, effective_date: datetime | None = None
    ) -> str:
        """Store an event for the workflows waiting on ``name``/``key``; returns its id."""
        result: str = self._call(self._host.publish_event, name, key, data, effective_date)
        return result

    def suspend_workflow(self, workflow_id: str) -> bool:
        """Suspend a RUNNABLE workflow; ``True`` if it was suspended."""
        result: bool = self._call(self._host.suspend_workflow, workflow_id)
        return result

    def resume_workflow(
        self, workflow_id: str, *, secrets: Mapping[str, str] | None = None
    ) -> bool:
        """Resume a SUSPENDED workflow (giving it ``secrets`` again); ``True`` if it was
        resumed."""
        result: bool = self._call(self._host.resume_workflow, workflow_id, secrets=secrets)
        return result

    def terminate_workflow(self, workflow_id: str) -> bool:
        """End an unfinished workflow; ``True`` if it was terminated."""
        result: bool = self._call(self._host.terminate_workflow, workflow_id)
        return result

    def get_workflow(self, workflow_id: str) -> WorkflowInstance:
        """The instance, data restored to the definition's data type."""
        result: WorkflowInstance = self._call(self._host.get_workflow, workflow_id)
        return result

    def get_errors(self, workflow_id: str) -> list[ExecutionError]:
        """Every error recorded for the workflow, oldest first."""
        result: list[ExecutionError] = self._call(self._host.get_errors, workflow_id)
        return result

    def wait_for_workflow(
        self, workflow_id: str, timeout: float | timedelta | None = None
    ) -> WorkflowInstance:
        """Block until the workflow is no longer RUNNABLE; ``WorkflowTimeoutError`` after
        ``timeout`` seconds."""
        result: WorkflowInstance = self._call(self._host.wait_for_workflow, workflow_id, timeout)
        return result

    def search(
        self,
        terms: str = "",
        filters: SearchFilters | Mapping[str, Any] | None = None,
        skip: int = 0,
        take: int = 100,
    ) -> Page:
        """Full-text search over workflows."""
        result: Page = self._call(self._host.search, terms, filters, skip, take)
        return result

    def purge(
        self,
        older_than: timedelta | datetime,
        statuses: Sequence[WorkflowStatus] = DEFAULT_STATUSES,
        *,
        dry_run: bool = False,
        batch: int = 500,
    ) -> PurgeReport:
        """Remove ended workflows older than ``older_than`` (see WorkflowHost.purge)."""
        result: PurgeReport = self._call(
            partial(self._host.purge, older_than, statuses, dry_run=dry_run, batch=batch)
        )
        return result

    def list_workflows(
        self,
        *,
        status: WorkflowStatus | None = None,
        definition_id: str | None = None,
        skip: int = 0,
        take: int = 100,
    ) -> list[WorkflowInstance]:
        """Stored workflows, newest first (without pointers)."""
        result: list[WorkflowInstance] = self._call(
            partial(
                self._host.list_workflows,
                status=status,
                definition_id=definition_id,
                skip=skip,
                take=take,
            )
        )
        return result

    def lifecycle_events(self, *, replay: bool = True) -> LifecycleEventStream:
        """A blocking iterator over lifecycle events (recent history with ``replay``,
        then live ones) that ends when the host stops or the stream is closed."""
        stream = LifecycleEventStream(self)
        nursery = self._nursery
        if nursery is None:
            raise self._not_running()
        stream._scope = self._call(nursery.start, self._forward, stream, replay)
        return stream

    async def _forward(
        self,
        stream: LifecycleEventStream,
        replay: bool,
        *,
        task_status: trio.TaskStatus[trio.CancelScope] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        try:
            with trio.CancelScope() as scope:
                iterator = self._host.lifecycle_events(replay=replay)
                task_status.started(scope)
                async for event in iterator:
                    stream._queue.put(event)
        finally:
            stream._queue.put(_END)


class LifecycleEventStream:
    """Lifecycle events from a :class:`BlockingWorkflowHost`, for a plain thread.

    Iterate it (``for event in stream``), or call :meth:`get` with a timeout. Events
    are buffered without bound until read, so close streams you stop reading
    (``with host.lifecycle_events() as stream:`` does).
    """

    def __init__(self, owner: BlockingWorkflowHost) -> None:
        self._owner = owner
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._scope: trio.CancelScope | None = None
        self._ended = False

    def get(self, timeout: float | None = None) -> LifecycleEvent | None:
        """The next event; ``None`` once the stream has ended; :class:`TimeoutError` if
        none arrives within ``timeout`` seconds."""
        if self._ended:
            return None
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no lifecycle event within {timeout} s") from None
        if item is _END:
            self._ended = True
            return None
        event: LifecycleEvent = item
        return event

    def __iter__(self) -> Iterator[LifecycleEvent]:
        return self

    def __next__(self) -> LifecycleEvent:
        event = self.get()
        if event is None:
            raise StopIteration
        return event

    def close(self) -> None:
        """Stop receiving events; iteration ends."""
        self._ended = True
        scope = self._scope
        token = self._owner._token
        if scope is not None and token is not None:
            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run_sync(scope.cancel, trio_token=token)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
