"""The host's background work: queue consumers, the runnable poller, timers, leases."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import attrs
import trio

from wfe.core import (
    DefinitionDriftError,
    DefinitionNotFoundError,
    Event,
    EventSubscription,
    StaleLeaseError,
    StoreLostError,
    WfeError,
    WorkflowDefinition,
    WorkflowInstance,
    WorkflowNotFoundError,
    WorkflowStatus,
)
from wfe.core.executor import EVERY_EVENT, Command, ExecutorEnv, InstanceRun, get_tracer
from wfe.core.primitives import CHILD_FINISHED_EVENT
from wfe.core.protocols import (
    BulkSearchIndex,
    ClaimingDelivery,
    EventDelivery,
    IndexingPersistence,
    Lease,
    LeasingDelivery,
    LeasingPersistence,
    PendingInCheckpoints,
    PendingSubscriptions,
    QueueItem,
    QueueKind,
    ReleasingCheckpoint,
)

from ._health import Health
from ._holding import Holding, last_writer
from ._indexing import consume_in_batches
from ._leases import Hold, LeaseKeeper
from ._middleware import PostRunner, middleware_failure, record_error, run_execute
from ._services import HostServices
from ._timers import TimerWheel

log = logging.getLogger("wfe.host")

_DEQUEUE_TIMEOUT = 30.0  # providers wake on enqueue or poll inside; long waits are cheap
_EVENT_RETRY = timedelta(milliseconds=100)
_EVENT_RETRY_MAX = timedelta(seconds=5)
_MAX_BACKOFF = 300.0
# The ends a run hands to Dispatcher.finished (and so to the callers waiting for them).
ENDED = (WorkflowStatus.COMPLETE, WorkflowStatus.TERMINATED)
# The reference of a workflow started by a parent's sub_workflow step.
CHILD_REFERENCE = "child of "


def parent_of(reference: str | None) -> str | None:
    """The parent's id of a sub-workflow (its reference is ``child of <id>``)."""
    if reference is not None and reference.startswith(CHILD_REFERENCE):
        return reference[len(CHILD_REFERENCE) :]
    return None


_POLL_BATCH = 1000
_LOCK_RETRY = 0.05
# A start waits for a workflow slot only while slots are being given back (one was
# within the last _SLOT_CHURN seconds), and then up to _SLOT_WAIT: with 50 callers and
# 16 slots of short workflows, 50 ms ran out for about a sixth of the starts (queued
# after all), 200 ms for almost none (idle shape: 560 -> 700 starts/s).
_SLOT_CHURN = 0.05
_SLOT_WAIT = 0.2


class Dispatcher:
    """Runs inside the host's nursery; see module docs."""

    def __init__(self, host: HostServices) -> None:
        self.host = host
        self.runs: dict[str, InstanceRun] = {}
        # Created here and about to run here (see run_new): RUNNABLE, no need to look.
        self.starting: set[str] = set()
        self._workflow_limiter = trio.CapacityLimiter(host.config.max_concurrent_workflows)
        self._event_limiter = trio.CapacityLimiter(max(1, host.config.event_workers))
        self._slot_freed = -math.inf  # trio time a workflow slot was last given back
        # Stores that create instances and events with their leases, and deliveries
        # that claim (see create_new, publish_new, _deliver); None: separate calls.
        persistence = host.persistence
        self._leasing = (
            persistence
            if isinstance(persistence, LeasingPersistence)
            and persistence.keeps_leases_of(host.locks)
            else None
        )
        self._claiming = persistence if isinstance(persistence, ClaimingDelivery) else None
        self._pending_subs = persistence if isinstance(persistence, PendingSubscriptions) else None
        self._leasing_delivery = (
            persistence
            if self._leasing is not None and isinstance(persistence, LeasingDelivery)
            else None
        )
        # A store that gives a run's lease up with its pass's last checkpoint.
        self._releasing = (
            persistence
            if self._leasing is not None and isinstance(persistence, ReleasingCheckpoint)
            else None
        )
        # A store that writes a workflow's search document with the checkpoint ending
        # it: no index work after a run (or a command) that ended its workflow.
        search = host.search_index
        self._indexes_ended = (
            search is not None
            and isinstance(persistence, IndexingPersistence)
            and persistence.index_ended_in_checkpoints(search)
        )
        self._service_scope = trio.CancelScope()
        self._work: trio.Nursery | None = None
        self._draining = False
        self._runs_done = trio.Event()
        self._backoff: dict[str, int] = {}
        self._event_backoff: dict[str, int] = {}
        self.health = Health(host.clock)
        self._leases = LeaseKeeper(lambda: host.locks, self.health, self.request_index)
        self._wf_timers = TimerWheel(
            host.clock, self._wake_workflow, self.health, "waking workflows"
        )
        self._event_timers = TimerWheel(host.clock, self._wake_event, self.health, "waking events")
        self.env = ExecutorEnv(
            persistence=host.persistence,
            clock=host.clock,
            publish=host.publish,
            log_sink=host.config.log_sink,
            services=self,
            step_middleware=host.config.step_middleware,
            step_log=host.step_log,
            max_parallel_steps=host.config.max_parallel_steps,
            on_subscribed=self.on_subscribed,
            pending_in_checkpoints=isinstance(persistence, PendingInCheckpoints)
            and persistence.finds_pending_in_checkpoints(),
            finish_events=self.finish_events,
            on_finished=self.finished,
            tracer=get_tracer(host.config.tracer_provider),
        )
        phases = host.config.workflow_middleware
        self._execute_middleware = list(phases.get("execute", ()))
        self.post_middleware = PostRunner(host, phases.get("post", ()))
        # Workflow middleware may run user code once a run takes no more input (and
        # that code may publish events): see _ending_here.
        self._code_after_pass = bool(self._execute_middleware or phases.get("post"))
        # The workflow leases this host's runs hold, each with its letting go.
        self._holding: dict[str, Holding] = {}
        # While the poller reads due instances: the runs here whose pass ended.
        self._passes_ended: set[str] | None = None

    async def finished(self, instance: WorkflowInstance, events: list[Event]) -> None:
        """A workflow completed or was terminated (its final checkpoint is stored, with
        the notice to a waiting parent among ``events``): hand its end to the callers
        waiting for it, offer those events for delivery, then run ``post``."""
        self.host.ended_here(instance)
        if events:
            await self.host.queues.enqueue_many(QueueKind.EVENT, [e.id for e in events])
        await self.post_middleware(instance)

    @staticmethod
    def lock_name(workflow_id: str) -> str:
        return f"wfe:workflow:{workflow_id}"

    # -- serving --------------------------------------------------------------

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        if not self.host.config.run_workflows:
            task_status.started()  # a client host: no consumers, poller or timers
            return
        async with trio.open_nursery() as work:
            self._work = work
            # In ``work``, not among the services: runs finishing while the host drains
            # keep their leases renewed.
            work.start_soon(self._leases.serve)
            with self._service_scope:
                async with trio.open_nursery() as services:
                    await services.start(self._wf_timers.serve)
                    await services.start(self._event_timers.serve)
                    services.start_soon(self._consume, QueueKind.WORKFLOW, self._workflow_limiter)
                    services.start_soon(self._consume, QueueKind.EVENT, self._event_limiter)
                    index = self.host.search_index
                    if isinstance(index, BulkSearchIndex):
                        services.start_soon(consume_in_batches, self.host, index, self.health)
                    elif index is not None:
                        services.start_soon(self._consume, QueueKind.INDEX, trio.CapacityLimiter(1))
                    services.start_soon(self._poll)
                    task_status.started()
            # Services stopped (draining): let in-flight work finish in `work`.

    async def drain(self, grace: timedelta) -> None:
        """Stop taking work; wait up to ``grace`` for in-flight steps; then stop."""
        self._draining = True
        self._service_scope.cancel()
        for run in list(self.runs.values()):
            run.drain()
        with trio.move_on_after(grace.total_seconds()):
            if self.runs:
                await self._runs_done.wait()
        if self._work is not None:
            self._work.cancel_scope.cancel()

    async def _consume(self, kind: QueueKind, limiter: trio.CapacityLimiter) -> None:
        queues = self.host.queues
        assert self._work is not None
        loop = f"dequeuing {kind.value} items"
        while True:
            token = object()
            await limiter.acquire_on_behalf_of(token)
            try:
                item = await queues.dequeue(kind, _DEQUEUE_TIMEOUT)
            except Exception as exc:
                limiter.release_on_behalf_of(token)
                # A store that fails for a while (disk full, a restart) must not end
                # the host: retry with backoff; only a lost store is fatal (re-raised).
                await trio.sleep(self.health.failed(loop, exc))
                continue
            except BaseException:
                limiter.release_on_behalf_of(token)
                raise
            self.health.succeeded(loop)
            if item is None:
                limiter.release_on_behalf_of(token)
                continue
            self._work.start_soon(self._handle, item, limiter, token)

    async def _handle(self, item: QueueItem, limiter: trio.CapacityLimiter, token: object) -> None:
        # The consumer took a slot before dequeuing (so it never takes work it cannot
        # start); the slot is given back here.
        try:
            if item.kind is QueueKind.WORKFLOW:
                await self.process_workflow(item.item_id)
            elif item.kind is QueueKind.EVENT:
                await self.process_event(item.item_id)
            else:
                await self._index(item.item_id)
            self.health.succeeded(f"processing {item.kind.value} items")
        except (WorkflowNotFoundError, StaleLeaseError) as exc:
            log.info("queue item %s %s dropped: %s", item.kind, item.item_id, exc)
        except Exception as exc:
            # One bad item must not stop the host (only a lost store does).
            self.health.work_failed(
                f"processing {item.kind.value} items", exc, f"processing {item.kind} {item.item_id}"
            )
        finally:
            self._give_back(limiter, token)
            with trio.CancelScope(shield=True):
                try:
                    await self.host.queues.ack(item)
                    self.health.succeeded("acknowledging queue items")
                except StoreLostError:
                    pass  # reported by whichever loop meets it next
                except Exception as exc:
                    # Not acknowledged: it will be redelivered.
                    self.health.failed("acknowledging queue items", exc)

    async def _poll(self) -> None:
        host = self.host
        loop = "polling the store for due work"
        while True:
            now = host.clock.now()
            try:
                # A pass here that ended while the read ran was read as it was, due,
                # perhaps; this host has its plan for it (see _execute): queued again
                # it would cost a lease, a claim and an empty pass.
                ended = self._passes_ended = set()
                try:
                    due = await host.persistence.get_runnable_instances(now, _POLL_BATCH)
                finally:
                    self._passes_ended = None
                ids = [wid for wid in due if not self._here(wid) and wid not in ended]
                if ids:
                    await host.queues.enqueue_many(QueueKind.WORKFLOW, ids)
                events = await host.persistence.get_runnable_events(now, _POLL_BATCH)
                if events:
                    await host.queues.enqueue_many(QueueKind.EVENT, events)
            except Exception as exc:
                delay = self.health.failed(loop, exc)  # re-raises a lost store
                await trio.sleep(min(delay, host.config.poll_interval.total_seconds()))
                continue
            self.health.succeeded(loop)
            await host.clock.sleep_until(now + host.config.poll_interval)

    async def _wake_workflow(self, workflow_id: str) -> None:
        if workflow_id not in self.runs:
            await self.host.queues.enqueue(QueueKind.WORKFLOW, workflow_id)

    async def _wake_event(self, event_id: str) -> None:
        await self.host.queues.enqueue(QueueKind.EVENT, event_id)

    async def request_index(self, workflow_id: str) -> None:
        if self.host.search_index is not None:
            await self.host.queues.enqueue(QueueKind.INDEX, workflow_id)

    async def _index_after(self, instance: WorkflowInstance, *, released: bool = False) -> None:
        """Index ``instance`` after a run or a command changed it, unless the store
        wrote its document with the checkpoint that ended it, or with the one that
        ended the pass and gave its lease up (``released``, see
        :class:`ReleasingCheckpoint`)."""
        if not (self._indexes_ended and (released or instance.status in ENDED)):
            await self.request_index(instance.id)

    async def _index(self, workflow_id: str) -> None:
        index = self.host.search_index
        if index is not None:
            await index.index(
                await self.host.persistence.get_workflow(workflow_id, with_pointers=False)
            )

    # -- leases -----------------------------------------------------------------

    async def _release(self, lease: Lease) -> None:
        # A lost release costs nothing but time (the lease expires), but the lock store
        # failing is reported: with every start run here at once, releases and renewals
        # may be all this host asks of it.
        with trio.CancelScope(shield=True):
            try:
                await self.host.locks.release(lease)
            except StoreLostError:
                pass  # reported by whichever loop meets it next
            except WfeError as exc:
                self.health.failed("releasing leases", exc)
            else:
                self.health.succeeded("releasing leases")

    # -- workflows ----------------------------------------------------------------

    async def process_workflow(self, workflow_id: str) -> None:
        if workflow_id in self.runs or self._draining:
            return
        host = self.host
        asked = trio.current_time()
        lease = await host.locks.acquire(self.lock_name(workflow_id), host.config.lease_ttl)
        if lease is None:
            return
        await self._run_leased(workflow_id, lease, asked)

    async def create_new(self, instance: WorkflowInstance, *, run_here: bool) -> NewRun | None:
        """Store ``instance``, just made by a start; with ``run_here`` and a free
        workflow slot, under a lease taken for it, so that it runs here at once with no
        queue item, dequeue, ack or claim in between (see :meth:`run_new`). ``None``
        when it is to be queued (no slot free, the host runs no workflows, or
        ``eager_start`` is off). Nothing is kept (slot, lease) when the create fails.

        The lease is taken before (or with) the instance: nobody else can know its id
        yet, so no earlier holder has a token to fence, and the run's first checkpoint
        records this lease's token as a claim would. A store that keeps the leases
        (:class:`LeasingPersistence`) takes both in one write."""
        persistence = self.host.persistence
        run_here = (
            run_here
            and self._work is not None
            and not self._draining
            and self.host.config.eager_start
        )
        token = object()
        if not run_here or not await self._slot_for_start(token):
            await persistence.create_workflow(instance)
            return None
        asked = trio.current_time()
        lease: Lease | None = None
        try:
            if self._leasing is not None:
                lease = await self._leasing.create_workflow_leased(
                    instance,
                    self.host.locks,
                    self.lock_name(instance.id),
                    self.host.config.lease_ttl,
                )
            else:
                lease = await self._lease_then_create(instance)
        finally:
            if lease is None:
                self._give_back(self._workflow_limiter, token)
        return None if lease is None else NewRun(lease, asked, token)

    async def _lease_then_create(self, instance: WorkflowInstance) -> Lease | None:
        """Take the lease on ``instance`` from the lock provider, then store it; the
        lease is released when the create fails."""
        lease: Lease | None = None
        try:
            lease = await self.host.locks.acquire(
                self.lock_name(instance.id), self.host.config.lease_ttl
            )
        except StoreLostError:
            raise
        except Exception as exc:
            # The lock store failing must not fail a start the workflow store can
            # take: it is queued instead (and the queue reports its own trouble).
            log.debug("no lease for new workflow %s (%s); queueing it", instance.id, exc)
        try:
            await self.host.persistence.create_workflow(instance)
        except BaseException:
            if lease is not None:
                await self._release(lease)
            raise
        return lease

    async def _slot_for_start(self, token: object) -> bool:
        """Take a workflow slot on behalf of ``token`` for a start: at once when one is
        free; else, while slots are being given back (one was within the last
        ``_SLOT_CHURN`` seconds: short workflows coming and going, as in a burst of
        starts), wait up to ``_SLOT_WAIT`` for one. ``False``: none, queue it (a host
        whose slots are all held by long runs queues at once)."""
        limiter = self._workflow_limiter
        try:
            limiter.acquire_on_behalf_of_nowait(token)
            return True
        except trio.WouldBlock:
            pass
        if trio.current_time() - self._slot_freed > _SLOT_CHURN:
            return False
        # A start waiting here costs its caller at most _SLOT_WAIT; queued instead it
        # would cost the host a queue item, a dequeue, a claim and an ack.
        with trio.move_on_after(_SLOT_WAIT):
            await limiter.acquire_on_behalf_of(token)
            return True
        return False

    def _give_back(self, limiter: trio.CapacityLimiter, token: object) -> None:
        """Give back the slot of ``limiter`` held for ``token``; when it is a workflow
        slot, note when (:meth:`_slot_for_start` waits only while slots come back)."""
        limiter.release_on_behalf_of(token)
        if limiter is self._workflow_limiter:
            self._slot_freed = trio.current_time()

    async def run_new(self, new: NewRun, instance: WorkflowInstance) -> None:
        """Run ``instance``, just created under ``new``'s lease, in this host (queued
        as usual when the host began draining or the lease ran out meanwhile)."""
        wid = instance.id
        if self._spawn_leased(wid, new.lease, new.asked, new.slot, "starting", instance):
            # Before the run's task starts: it is found here (see _run_leased).
            self.starting.add(wid)
        else:
            await self.abandon_new(new)
            await self.host.queues.enqueue(QueueKind.WORKFLOW, wid)
            await self.request_index(wid)

    async def abandon_new(self, new: NewRun) -> None:
        """Give back the slot and lease of ``new`` (its instance was not created, or
        it will not run here)."""
        self._give_back(self._workflow_limiter, new.slot)
        await self._release(new.lease)

    def _spawn_leased(
        self,
        workflow_id: str,
        lease: Lease,
        asked: float,
        slot: object,
        doing: str,
        instance: WorkflowInstance | None = None,
        *,
        loop: str = "processing workflow items",
    ) -> bool:
        """Start a task running the workflow under ``lease`` holding workflow slot
        ``slot``, which it gives back at the end. ``False`` (nothing started) while
        draining, when the workflow already runs here or the lease ran out meanwhile."""
        work = self._work
        if work is None or self._draining or workflow_id in self.runs:
            return False
        if self._lease_expired(asked, lease):
            return False

        async def run() -> None:
            try:
                await self._run_leased(workflow_id, lease, asked, instance)
            except (WorkflowNotFoundError, StaleLeaseError) as exc:
                log.info("workflow %s, %s it: %s", workflow_id, doing, exc)
            except Exception as exc:
                self.health.work_failed(loop, exc, f"{doing} workflow {workflow_id}")
            finally:
                self.starting.discard(workflow_id)
                self._give_back(self._workflow_limiter, slot)

        work.start_soon(run)
        return True

    async def _run_leased(
        self,
        workflow_id: str,
        lease: Lease,
        asked: float,
        instance: WorkflowInstance | None = None,
    ) -> None:
        """Run the workflow under ``lease`` (asked for at trio time ``asked``), then
        release it. ``instance``: the instance as just created under this lease, or as
        claimed by the delivery that woke it (no claim needed); ``None``: claim it."""
        hold = Hold(asked + lease.ttl.total_seconds())
        scope = trio.CancelScope()
        # An eager start is indexed when its pass ends, or a moment in if still running.
        new = workflow_id if workflow_id in self.starting else None
        held = self._leases.keep(lease, hold, scope, new)
        holding = self._holding[workflow_id] = Holding(held)
        try:
            with scope:
                await self._execute(workflow_id, lease, hold, instance)
        finally:
            self._leases.drop(held)
            if not holding.given_up:
                await self._release(lease)
            if self._holding.get(workflow_id) is holding:
                del self._holding[workflow_id]
            holding.released.set()
            if self._passes_ended is not None:
                self._passes_ended.add(workflow_id)

    async def _execute(
        self, workflow_id: str, lease: Lease, hold: Hold, created: WorkflowInstance | None
    ) -> None:
        host = self.host
        if created is None:
            # The claim records the lease's token in the store: from here on, a write by
            # an earlier holder (paused past its lease, say) is refused.
            instance = await host.persistence.claim_workflow(workflow_id, lease.fencing_token)
        else:
            instance = created
            self.starting.discard(workflow_id)
        if instance.status is not WorkflowStatus.RUNNABLE:
            return
        definition = host.registry.get(instance.definition_id, instance.version)
        problem = self._definition_problem(instance, definition)
        if problem is not None or definition is None:
            run = InstanceRun(self.env, instance, None, lease.fencing_token)
            await self._defer(run, str(problem))
            return
        self._backoff.pop(workflow_id, None)
        holding = self._holding.get(workflow_id)
        run = InstanceRun(
            self.env,
            instance,
            definition,
            lease.fencing_token,
            holds_lease=hold.held,
            write_last=(
                None
                if self._releasing is None or holding is None or self._code_after_pass
                else last_writer(self._releasing, host.locks, self._leases, holding, lease)
            ),
        )
        self.runs[workflow_id] = run
        try:
            if self._execute_middleware:
                try:
                    await run_execute(self._execute_middleware, instance, run.run)
                except StaleLeaseError:
                    raise
                except Exception as exc:
                    # Never crash the host: record it; a still-runnable instance is
                    # retried with backoff (the middleware may fail before the pass).
                    message = middleware_failure("execute", exc)
                    log.error("workflow %s: %s", workflow_id, message, exc_info=exc)
                    if run.instance.status is WorkflowStatus.RUNNABLE:  # the pass may end it
                        await self._defer(run, message)
                    else:
                        await record_error(self.host, instance, message)
            else:
                await run.run()
        finally:
            del self.runs[workflow_id]
            holding = self._holding.get(workflow_id)
            if holding is not None:
                holding.passed = True
                if holding.given_up:
                    holding.released.set()
            if self._draining and not self.runs:
                self._runs_done.set()
        await self._index_after(instance, released=holding is not None and holding.given_up)
        if instance.status is WorkflowStatus.RUNNABLE and instance.next_execution is not None:
            self._wf_timers.schedule(workflow_id, instance.next_execution)

    def _definition_problem(
        self, instance: WorkflowInstance, definition: WorkflowDefinition | None
    ) -> WfeError | None:
        registered = None if definition is None else self.host.registry.fingerprint(definition)
        return _definition_problem(instance, definition, registered)

    async def _defer(self, run: InstanceRun, message: str) -> None:
        """Record an error and retry later with exponential backoff (never spin)."""
        workflow_id = run.instance.id
        attempt = self._backoff.get(workflow_id, 0) + 1
        self._backoff[workflow_id] = attempt
        until = self.host.clock.now() + timedelta(seconds=min(2.0**attempt, _MAX_BACKOFF))
        await run.defer(message, until)
        self._wf_timers.schedule(workflow_id, until)

    async def control(self, workflow_id: str, command: Command) -> bool:
        """Apply a control command under the workflow's lease: through its run when
        this host is running it, else in a run made for the command alone."""
        host = self.host
        deadline = trio.current_time() + host.config.lease_ttl.total_seconds()
        while True:
            held = self.runs.get(workflow_id)
            if held is not None and held.accepting:
                return await held.apply(command)
            lease = await host.locks.acquire(self.lock_name(workflow_id), host.config.lease_ttl)
            if lease is not None:
                break
            if trio.current_time() > deadline:
                raise WfeError(f"workflow {workflow_id} is busy on another host; try again")
            await trio.sleep(_LOCK_RETRY)
        try:
            instance = await host.persistence.claim_workflow(workflow_id, lease.fencing_token)
            definition = host.registry.get(instance.definition_id, instance.version)
            if self._definition_problem(instance, definition) is not None:
                definition = None  # control commands need no step of it
            run = InstanceRun(self.env, instance, definition, lease.fencing_token)
            done = await run.apply(command)
        finally:
            await self._release(lease)
        if done and command is Command.RESUME:
            await host.queues.enqueue(QueueKind.WORKFLOW, workflow_id)
        if done:
            await self._index_after(run.instance)
        return done

    async def finish_events(self, instance: WorkflowInstance) -> list[Event]:
        """A finishing child's notice to its parent (sub-workflow), stored with its
        final checkpoint whether the parent waits yet or not: a parent re-running its
        sub_workflow step after a crash may store its wait only after this end, and
        then takes the notice as a pending event (its wait takes any, however old). No
        read, and nothing for a workflow no parent started (its reference says so).
        A notice no wait ever takes goes when retention purges its child."""
        if parent_of(instance.reference) is None:
            return []
        return [_child_notice(instance, self.host.clock.now())]

    async def start_child(
        self,
        definition_id: str,
        version: int | None,
        data: Any,
        child_id: str,
        parent_id: str,
    ) -> str:
        """Create a child workflow (idempotent by id); it is queued once the parent's
        subscription to its end is stored (see :meth:`on_subscribed`).

        A child that already exists was started by an earlier run of this step (one
        whose checkpoint was never stored). If it has finished meanwhile, its final
        checkpoint stored its notice for the wait this run is about to open; one that
        ended with none (stored by a version that wrote a notice only for a parent
        already waiting) gets it here."""
        host = self.host
        try:
            child = await host.persistence.get_workflow(child_id, with_pointers=False)
        except WorkflowNotFoundError:
            return await host.start_workflow(
                definition_id,
                version,
                data,
                reference=f"{CHILD_REFERENCE}{parent_id}",
                workflow_id=child_id,
                enqueue=False,
            )
        if child.status in ENDED:
            pending = await host.persistence.get_pending_events(
                CHILD_FINISHED_EVENT, child_id, EVERY_EVENT, 1
            )
            if not pending:
                notice = _child_notice(child, host.clock.now())
                await host.persistence.create_event(notice)
        return child_id

    async def on_subscribed(
        self, subs: list[EventSubscription], found: Mapping[str, str] | None
    ) -> None:
        """New waits: hand them an already pending event (``found`` by their checkpoint,
        else read now); start awaited children."""
        host = self.host
        for sub in subs:
            if sub.event_name == CHILD_FINISHED_EVENT:
                await host.queues.enqueue(QueueKind.WORKFLOW, sub.event_key)
            if found is not None:
                first = found.get(sub.id)
            else:
                pending = await host.persistence.get_pending_events(
                    sub.event_name, sub.event_key, sub.as_of, 1
                )
                first = pending[0].id if pending else None
            if first is not None:
                await host.queues.enqueue(QueueKind.EVENT, first)

    # -- events -------------------------------------------------------------------

    async def publish_new(self, event: Event) -> bool:
        """Store ``event``, just made by a publish, and deliver it at once when an event
        slot is free: no queue item, dequeue and ack in between. The caller waits for
        the delivery (not for the workflows it wakes): a burst of events is then
        delivered as fast as it is published, instead of piling up behind the
        publisher. The delivery runs in a task of its own, so a publisher cancelled
        meanwhile does not interrupt it; a failed one leaves the event unprocessed in
        the store, where the poller finds it. ``False`` (stored, no delivery started):
        queue it.

        A store that keeps the leases (:class:`LeasingPersistence`) stores a due event
        with the lease on its name and key, in one write."""
        host = self.host
        work = self._work
        slot = object()
        if work is None or self._draining or not host.config.eager_start:
            await host.persistence.create_event(event)
            return False
        try:
            self._event_limiter.acquire_on_behalf_of_nowait(slot)
        except trio.WouldBlock:
            await host.persistence.create_event(event)
            return False
        # None also when another host holds the event's lease: process_event then
        # finds it held too, and tries again later.
        lease: Lease | None = None
        try:
            if self._leasing is None or event.time > host.clock.now():
                await host.persistence.create_event(event)
            else:
                lease = await self._leasing.create_event_leased(
                    event, host.locks, self.event_lock_name(event), host.config.lease_ttl
                )
        except BaseException:
            self._event_limiter.release_on_behalf_of(slot)
            raise
        delivered = trio.Event()

        async def deliver() -> None:
            try:
                await self.process_event(event.id, event, delivered.set, lease)
                self.health.succeeded("processing event items")
            except (WorkflowNotFoundError, StaleLeaseError) as exc:
                log.info("event %s dropped: %s", event.id, exc)
            except Exception as exc:
                self.health.work_failed(
                    "processing event items", exc, f"delivering event {event.id}"
                )
            finally:
                self._event_limiter.release_on_behalf_of(slot)
                delivered.set()

        work.start_soon(deliver)
        await delivered.wait()
        return True

    @staticmethod
    def event_lock_name(event: Event) -> str:
        """The lease that keeps the deliveries of ``event``'s name and key to one at
        a time (see :meth:`process_event`)."""
        return f"wfe:event:{event.name}:{event.key}"

    async def process_event(
        self,
        event_id: str,
        stored: Event | None = None,
        delivered: Callable[[], None] | None = None,
        lease: Lease | None = None,
    ) -> None:
        """Deliver an event to every subscription that takes it, one atomic delivery
        each; the last one marks it processed, so a crash in between leaves the rest
        to a later attempt and never delivers twice (delivered subscriptions close).
        ``stored``: the event as this host just stored it (not read again);
        ``delivered``: called once the deliveries are stored, before the event's lock
        is released (its publisher need not wait for that write); ``lease``: the
        event's lock, when taken already (released here)."""
        host = self.host
        persistence = host.persistence
        try:
            event = stored if stored is not None else await persistence.get_event(event_id)
            if event.processed:
                return
            if event.time > host.clock.now():
                # Published with a future effective date: deliverable from then on.
                self._event_timers.schedule(event_id, event.time)
                return
            if lease is None:
                lease = await host.locks.acquire(self.event_lock_name(event), host.config.lease_ttl)
                if lease is None:
                    self._retry_event(event_id)
                    return
            if await self._deliver_all(event, lease):
                lease = None  # given up by the write of its last delivery
        finally:
            if delivered is not None:
                delivered()
            if lease is not None:
                await self._release(lease)

    async def _deliver_all(self, event: Event, lease: Lease) -> bool:
        """Deliver ``event`` (its lock held: ``lease``) to every subscription that
        takes it; ``True`` when the last delivery's write gave ``lease`` up."""
        host = self.host
        takers: list[EventSubscription] = []
        for sub, first in await self._subscriptions_with_pending(event):
            if first is not None and first != event.id:
                # This subscription takes the earliest eligible event first.
                await host.queues.enqueue(QueueKind.EVENT, first)
                continue
            takers.append(sub)
        blocked = released = False
        for i, sub in enumerate(takers):
            last = i == len(takers) - 1 and not blocked
            done, released = await self._deliver(sub, event, last, lease if last else None)
            if not done:
                blocked = True
        if blocked:
            self._retry_event(event.id)
        else:
            self._event_backoff.pop(event.id, None)
        return released

    async def _subscriptions_with_pending(
        self, event: Event
    ) -> list[tuple[EventSubscription, str | None]]:
        """The subscriptions ``event`` goes to, each with the id of the first pending
        event it takes (see :class:`PendingSubscriptions`)."""
        if self._pending_subs is not None:
            return await self._pending_subs.get_subscriptions_with_pending(
                event.name, event.key, event.time
            )
        persistence = self.host.persistence
        found: list[tuple[EventSubscription, str | None]] = []
        for sub in await persistence.get_subscriptions(event.name, event.key, event.time):
            pending = await persistence.get_pending_events(event.name, event.key, sub.as_of, 1)
            found.append((sub, pending[0].id if pending else None))
        return found

    def _retry_event(self, event_id: str) -> None:
        """Try a blocked delivery again soon, backing off while the workflow stays busy."""
        attempt = self._event_backoff.get(event_id, 0) + 1
        self._event_backoff[event_id] = attempt
        delay = min(_EVENT_RETRY * 2 ** (attempt - 1), _EVENT_RETRY_MAX)
        self._event_timers.schedule(event_id, self.host.clock.now() + delay)

    async def _deliver(
        self,
        sub: EventSubscription,
        event: Event,
        mark_processed: bool,
        release: Lease | None = None,
    ) -> tuple[bool, bool]:
        """One delivery: whether it is done (``False``: the workflow is busy
        elsewhere, retry later), and whether its write gave ``release`` up.

        With a workflow slot free the workflow then runs here at once, under the lease
        its delivery holds: no release, queue item and re-acquire in between; on a
        :class:`ClaimingDelivery` store the delivery's write also claims it, and on a
        :class:`LeasingDelivery` one it takes the lease too (and gives ``release``,
        the event's lease, up)."""
        host = self.host
        wid = sub.workflow_id
        run = self.runs.get(wid)
        if run is not None and await run.deliver_event(sub, event, mark_processed=mark_processed):
            return True, False
        ending = self._ending_here(wid)
        if ending is not None:
            # Its run here takes no more input and is letting the lease go (writing
            # its last checkpoint, say): wait for that rather than fail to take the
            # lease and try again a retry interval later.
            await ending.wait()
        delivery = EventDelivery(
            event_id=event.id,
            subscription_id=sub.id,
            workflow_id=wid,
            pointer_id=sub.pointer_id,
            time=host.clock.now(),
            mark_processed=mark_processed,
        )
        asked = trio.current_time()
        slot: object | None = object()
        try:
            self._workflow_limiter.acquire_on_behalf_of_nowait(slot)
        except trio.WouldBlock:
            slot = None
        lease: Lease | None = None
        handed_over = released = False
        delivered = False
        try:
            claimed: WorkflowInstance | None = None
            if self._leasing_delivery is not None and slot is not None:
                lease, claimed = await self._leasing_delivery.deliver_event_leased(
                    delivery,
                    host.locks,
                    self.lock_name(wid),
                    host.config.lease_ttl,
                    release=release,
                )
                if lease is None:
                    return False, False
                delivered = claimed is not None
                released = delivered and release is not None
            else:
                lease = await host.locks.acquire(self.lock_name(wid), host.config.lease_ttl)
                if lease is None:
                    return False, False
                delivery = attrs.evolve(delivery, fencing_token=lease.fencing_token)
                if self._claiming is not None and slot is not None:
                    claimed = await self._claiming.deliver_event_claiming(delivery)
                    delivered = claimed is not None
                else:
                    delivered = await host.persistence.deliver_event(delivery)
            if delivered and slot is not None:
                handed_over = self._spawn_leased(
                    wid,
                    lease,
                    asked,
                    slot,
                    "after its event, running",
                    claimed,
                    loop="processing event items",
                )
        except WorkflowNotFoundError:
            return True, False
        finally:
            if not handed_over:
                if slot is not None:
                    self._give_back(self._workflow_limiter, slot)
                if lease is not None:
                    await self._release(lease)
        if delivered and not handed_over:
            await host.queues.enqueue(QueueKind.WORKFLOW, wid)
        return True, released

    def _here(self, workflow_id: str) -> bool:
        """Whether a run here holds ``workflow_id``'s lease or is about to."""
        return (
            workflow_id in self.runs or workflow_id in self._holding or workflow_id in self.starting
        )

    def _ending_here(self, workflow_id: str) -> trio.Event | None:
        """The release of ``workflow_id``'s lease by a run here whose pass is over (no
        step, no user code to come: waiting on it cannot deadlock), or ``None``."""
        holding = self._holding.get(workflow_id)
        if holding is None:
            return None
        run = self.runs.get(workflow_id)
        if run is None:
            ended = holding.passed
        else:
            ended = not run.accepting and not self._code_after_pass
        return holding.released if ended else None

    @staticmethod
    def _lease_expired(asked: float, lease: Lease) -> bool:
        return trio.current_time() >= asked + lease.ttl.total_seconds()


def _child_notice(child: WorkflowInstance, now: datetime) -> Event:
    """The event that ends a parent's sub_workflow step: the child's status and data."""
    return Event(
        name=CHILD_FINISHED_EVENT,
        key=child.id,
        data={"status": child.status.value, "data": child.data},
        time=now,
    )


@attrs.frozen
class NewRun:
    """A workflow slot and lease taken for a workflow about to be created here."""

    lease: Lease
    asked: float
    slot: object


def _definition_problem(
    instance: WorkflowInstance, definition: WorkflowDefinition | None, fingerprint: str | None
) -> WfeError | None:
    """Why ``definition`` cannot run ``instance`` (missing, drifted), or ``None``."""
    wid = instance.id
    if definition is None:
        return DefinitionNotFoundError(
            f"workflow {wid}: no definition {instance.definition_id!r} version "
            f"{instance.version} is registered on this host; register it, the workflow "
            "is retried with backoff"
        )
    if instance.fingerprint and instance.fingerprint != fingerprint:
        return DefinitionDriftError(
            f"workflow {wid}: definition {definition.id!r} version "
            f"{definition.version} has a different step graph than the one this instance "
            "was started with; register the original graph or give the new one a new version"
        )
    for p in instance.execution_pointers:
        if p.step_id >= len(definition.steps):
            return DefinitionDriftError(
                f"workflow {wid}: step {p.step_id} is missing from "
                f"definition {definition.id!r} version {definition.version}"
            )
    return None
