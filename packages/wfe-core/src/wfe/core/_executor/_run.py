"""One host's hold on one workflow instance: run its runnable pointers until idle.

While the host holds the instance (its lease), finished steps are checkpointed and
their successors started without a queue round trip. Runnable pointers run
concurrently in a nursery, bounded per instance. A successor never starts before
the checkpoint that created it has been persisted, unless it is replayable
(``StepBody.replayable``: control flow, waits, delays), which runs at once and is
stored with the next checkpoint: a crash before that re-runs it, repeating nothing.

Every write is one :class:`~wfe.core.protocols.Checkpoint`: what the pass changed, in
one fenced transaction. Cancel conditions and completion are decided *before* the
write, so the last step's result and COMPLETE are stored together, and every state a
crash can leave behind is one the poller or a resume finishes.
"""

from __future__ import annotations

import enum
import functools
import inspect
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import trio
from opentelemetry.trace import Span

from .. import serialization
from .._errors import DataSerializationError
from .._lifecycle import StepStarted
from .._models import (
    Event,
    EventSubscription,
    ExecutionPointer,
    PointerStatus,
    WorkflowInstance,
    WorkflowStatus,
)
from .._results import ExecutionResult
from .._step import LogSink, StepBody, StepExecutionContext, WorkflowDefinition
from .._telemetry import pass_span, record_step_error, step_span
from ..protocols import Checkpoint
from ._env import ExecutorEnv, StepMiddleware
from ._failure import handle_failure, record_error
from ._outcomes import process_result
from ._pending import PendingChanges
from ._state import InstanceState
from ._transitions import (
    FINISHED,
    check_cancellations,
    check_complete,
    finish_workflow,
    resume_workflow,
    suspend_workflow,
)


class Command(enum.Enum):
    """A control command applied to an instance, inside or outside a pass."""

    SUSPEND = "suspend"
    RESUME = "resume"
    TERMINATE = "terminate"


class InstanceRun:
    """Executes one instance while its lease is held; see module docs."""

    def __init__(
        self,
        env: ExecutorEnv,
        instance: WorkflowInstance,
        definition: WorkflowDefinition | None,
        fencing_token: int | None,
        *,
        holds_lease: Callable[[], bool] | None = None,
        write_last: Callable[[Checkpoint], Awaitable[None]] | None = None,
    ) -> None:
        self.env = env
        # Whether the host still surely holds the instance's lease: a host that was
        # paused past it starts no further step (its writes would be refused anyway).
        self._holds_lease = holds_lease
        # Writes the pass's last checkpoint in place of persist_checkpoint (the host
        # gives its lease up in that write); once it is used, the run takes nothing
        # more and starts no step (see _is_last).
        self._write_last = write_last
        self.wrote_last = False
        self.state = InstanceState(instance, definition)
        self._replayable_steps = definition is not None and any(
            s.body.replayable for s in definition.steps
        )
        self.instance = instance
        self.fencing_token = fencing_token
        self.accepting = True
        self.draining = False
        self.running: dict[str, trio.CancelScope] = {}
        self.pending = PendingChanges()
        # Whether the instance's end (COMPLETE or TERMINATED) is in the store: its final
        # checkpoint written, or the instance loaded ended.
        self.end_stored = instance.status in FINISHED
        self._write_error: BaseException | None = None
        # The last storable form of the data: a step that leaves unstorable data behind
        # fails, and the data is rolled back to this, so the instance can still be saved.
        self._good_data = serialization.dumps(self.instance.data)
        # ``_good_data`` while it surely is the data's current form (no step has run
        # since it was taken), so the checkpoint does not serialise the data again;
        # ``None`` at first, as ``execute`` middleware may change the data before the pass.
        self._fresh_data: str | None = None
        self._inflight: set[str] = set()
        self._flush_lock = trio.Lock()
        self._limiter = trio.CapacityLimiter(max(1, env.max_parallel_steps))
        self._nursery: trio.Nursery | None = None
        self._idle = trio.Event()
        self._sleep_scope: trio.CancelScope | None = None
        self._waker_scope: trio.CancelScope | None = None
        self._waker_at: datetime | None = None
        self._pass_span: Span | None = None

    # -- helpers used by result processing and failure handling -------------------

    def now(self) -> datetime:
        return self.env.clock.now()

    def lifecycle_fields(self) -> dict[str, Any]:
        i = self.instance
        return {
            "workflow_instance_id": i.id,
            "definition_id": i.definition_id,
            "version": i.version,
            "reference": i.reference,
            "time": self.now(),
        }

    def cancel_running(self, pointer_id: str) -> None:
        scope = self.running.get(pointer_id)
        if scope is not None:
            scope.cancel()

    def stop_others(self, current: ExecutionPointer | None) -> None:
        """The workflow ended: cancel every other running step."""
        for pid, scope in self.running.items():
            if current is None or pid != current.id:
                scope.cancel()

    # -- main loop ---------------------------------------------------------------

    async def run(self) -> None:
        """Run until nothing is runnable now (or within the hold window), then flush."""
        with pass_span(self.env.tracer, self.instance) as span:
            self._pass_span = span
            try:
                await self._run()
            except BaseExceptionGroup:
                # A refused write ends the pass; the steps it cancelled add nothing.
                if self._write_error is not None:
                    raise self._write_error from None
                raise

    def drain(self) -> None:
        """Start no new step; the pass ends when the running ones have finished."""
        self.draining = True
        self._changed()

    async def apply(self, command: Command) -> bool:
        """Apply a control command and store it; ``False`` when it does not apply
        (suspending a workflow that is not RUNNABLE, say). Works the same whether this
        run is executing steps or was made for the command alone."""
        match command:
            case Command.SUSPEND:
                changed = suspend_workflow(self)
            case Command.RESUME:
                changed = resume_workflow(self)
            case Command.TERMINATE:
                changed = finish_workflow(self, WorkflowStatus.TERMINATED)
        if not changed:
            return False
        await self._flush()
        if self.accepting:
            self._changed()
        return True

    async def defer(self, message: str, until: datetime) -> None:
        """Record an error and make the instance due again at ``until`` (backoff for
        a missing definition or a failed middleware), as one checkpoint."""
        record_error(self, None, message)
        self.pending.wake_at = until
        await self._flush()

    async def _run(self) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                while True:
                    self._idle = trio.Event()
                    self._changed()
                    if self.running:
                        await self._idle.wait()
                        continue
                    if self.draining or self.instance.status is not WorkflowStatus.RUNNABLE:
                        break
                    now = self.now()
                    wake = self.state.next_wake(now)
                    if wake is None or wake - now > self.env.hold_window:
                        break
                    await self._flush()
                    runnable = self.instance.status is WorkflowStatus.RUNNABLE
                    if self.running or self.draining or not runnable:
                        # Input arrived while the flush was written (an event, a
                        # command whose checkpoint was the last): decide afresh.
                        continue
                    with trio.CancelScope() as cs:
                        self._sleep_scope = cs
                        await self.env.clock.sleep_until(wake)
                    self._sleep_scope = None
                self.accepting = False
                if self._waker_scope is not None:
                    self._waker_scope.cancel()
        finally:
            self.accepting = False
        await self._flush()

    def _changed(self, *, take: bool = False) -> ExecutionPointer | None:
        """Something changed: apply cancel conditions, finish the workflow, start work.

        With ``take``, the first pointer now runnable is returned (already counted as
        running) for the calling pointer task to run next itself, instead of a new task
        being started for it: a sequence of steps runs in one task."""
        self._decide()
        taken = self._schedule(take)
        if not self.running:
            self._idle.set()
        return taken

    def _decide(self) -> None:
        """Apply cancel conditions and decide completion (before any write)."""
        if self.state.definition is not None:
            check_cancellations(self)
            check_complete(self)

    def _schedule(self, take: bool = False) -> ExecutionPointer | None:
        if (
            self._nursery is None
            or self.draining
            or self.instance.status is not WorkflowStatus.RUNNABLE
        ):
            return None
        if self._holds_lease is not None and not self._holds_lease():
            self.draining = True
            return None
        taken: ExecutionPointer | None = None
        now = self.now()
        dirty = self.state.dirty
        earliest: datetime | None = None
        for pid in list(self.state.active):
            if pid in self.running or pid in self._inflight:
                continue
            p = self.state.pointers[pid]
            # A pointer not yet stored waits for its checkpoint, unless it is
            # replayable (see StepBody.replayable): then it shares the next one.
            if pid in dirty and not self.state.step(p).body.replayable:
                continue
            if self.state.is_runnable(p, now):
                self.running[pid] = trio.CancelScope()
                if take and taken is None:
                    taken = p
                else:
                    self._nursery.start_soon(self._run_pointer, p)
            elif p.sleep_until is not None and (earliest is None or p.sleep_until < earliest):
                earliest = p.sleep_until
        wake_sooner = self._waker_at is None or (earliest is not None and earliest < self._waker_at)
        if self.running and earliest is not None and wake_sooner:
            if self._waker_scope is not None:
                self._waker_scope.cancel()
            # The scope is made here, not in the task: a waker replaced before its task
            # has started is cancelled too (else it would outlive the pass's end).
            scope = self._waker_scope = trio.CancelScope()
            self._waker_at = earliest
            self._nursery.start_soon(self._waker, earliest, scope)
        return taken

    async def _waker(self, when: datetime, scope: trio.CancelScope) -> None:
        with scope:
            await self.env.clock.sleep_until(when)
            if self._waker_scope is scope:  # not replaced by a sooner one meanwhile
                self._waker_at = None
                self._waker_scope = None
            self._changed()

    async def _run_pointer(self, first: ExecutionPointer) -> None:
        p: ExecutionPointer | None = first
        while p is not None:
            scope = self.running[p.id]
            try:
                with scope:
                    await _take(self._limiter)
                    try:
                        await self._execute(p)
                    finally:
                        self._limiter.release()
            finally:
                del self.running[p.id]
            # A replayable successor runs before this checkpoint, sharing the next one;
            # any other waits for it.
            p = self._changed(take=True) if self._replayable_steps else None
            if p is None:
                await self._flush()
                p = self._changed(take=True)

    async def _execute(self, p: ExecutionPointer) -> None:
        if p.end_time is not None:
            # Ended (cancelled by a saga's compensation, a cancel condition or the end of
            # the workflow) while this task waited for the limiter: the limiter's
            # cancel-shielded checkpoint lets that happen without raising Cancelled here,
            # and running it now would mark it RUNNING again, stranded.
            return
        self._fresh_data = None  # the step may change the data
        state = self.state
        step = state.step(p)
        now = self.now()
        # A new run (first, retry, or again after a stopped host), not a continuation
        # of a step that is waiting (its persistence data or a delivered event).
        if p.start_time is None or (p.persistence_data is None and not p.event_published):
            if p.start_time is None:
                p.start_time = now
            started = StepStarted(
                **self.lifecycle_fields(),
                step_id=step.id,
                step_name=step.display_name,
                pointer_id=p.id,
                attempt=p.retry_count + 1,
            )
            if step.body.replayable:
                # It may run before the checkpoint of the step before it: announced
                # with that checkpoint, after that step's own events.
                self.pending.publish(started)
            else:
                self.env.publish(started)
        p.status = PointerStatus.RUNNING
        state.touch(p)
        body = step.make_body()
        ctx = StepExecutionContext(
            workflow=self.instance,
            step=step,
            pointer=p,
            item=p.context_item,
            persistence_data=p.persistence_data,
            branch_complete=lambda: state.branch_complete(p.id),
            lookup_pointer=state.pointers.get,
            services=self.env.services,
        )
        if self.env.log_sink is not None:
            ctx.log_sink = self.env.log_sink
        with step_span(self.env.tracer, self._pass_span, self.instance, step, p) as span:
            try:
                for mapping in step.inputs:
                    mapping.apply(body, self.instance.data, ctx)
                result = await self._invoke(body, ctx)
                if result is None:
                    result = ExecutionResult.next()
                elif not isinstance(result, ExecutionResult):
                    raise TypeError(
                        f"step {step.display_name!r} returned {type(result).__qualname__}; "
                        "expected ExecutionResult or None"
                    )
                if result.proceed:
                    for out in step.outputs:
                        out.apply(body, self.instance.data)
            except Exception as exc:
                self._check_data()
                record_step_error(span, exc)
                if self._accepts_results(p):
                    handle_failure(self, p, step, exc)
                return
            unstorable = self._check_data()
            if unstorable is not None:
                record_step_error(span, unstorable)
                if self._accepts_results(p):
                    handle_failure(self, p, step, unstorable)
                return
            if self._accepts_results(p):
                process_result(self, p, step, result)

    def _accepts_results(self, p: ExecutionPointer) -> bool:
        """A step that finishes after its workflow was suspended still records its
        result (resuming continues from it); after the workflow ended, it does not."""
        live = (WorkflowStatus.RUNNABLE, WorkflowStatus.SUSPENDED)
        return self.instance.status in live and p.end_time is None

    def _check_data(self) -> DataSerializationError | None:
        """Keep the data storable: on failure roll it back and return the error."""
        try:
            self._good_data = serialization.dumps(self.instance.data)
            # Another step still running may change the data after this.
            self._fresh_data = self._good_data if len(self.running) <= 1 else None
        except DataSerializationError as exc:
            definition = self.state.definition_or_fail()
            self.instance.data = serialization.restore(
                serialization.loads(self._good_data), definition.data_type
            )
            return exc
        return None

    async def _invoke(self, body: StepBody, ctx: StepExecutionContext) -> ExecutionResult | None:
        return await _through(self.env.step_middleware, 0, body, ctx, self.env.step_log)

    # -- persistence -------------------------------------------------------------

    async def _flush(self) -> None:
        """Persist every change made so far as one checkpoint, then publish its events.

        A write that fails (a lost lease, a store error) ends this run: it accepts
        nothing more, and the instance continues from what the store holds."""
        await _take(self._flush_lock)
        try:
            await self._flush_locked()
        finally:
            self._flush_lock.release()

    async def _flush_locked(self) -> None:
        if self._write_error is not None:
            return
        self._decide()
        state, pending, inst = self.state, self.pending, self.instance
        if not pending.any(state):
            return
        if pending.wake_at is not None:
            inst.next_execution = pending.wake_at
        elif inst.status is WorkflowStatus.RUNNABLE:
            inst.next_execution = state.next_wake(self.now())
        else:
            inst.next_execution = None
        finishing = inst.status in FINISHED and not self.end_stored
        if finishing:
            pending.events.extend(await self.env.finish_events(inst))
        # The next changes collect afresh while this checkpoint is being written.
        pointers, state.dirty = list(state.dirty.values()), {}
        self.pending = PendingChanges()
        checkpoint = pending.checkpoint(
            inst,
            pointers,
            self.fencing_token,
            self._fresh_data,
            find_pending=self.env.pending_in_checkpoints,
        )
        self._inflight = {p.id for p in pointers}
        write: Callable[[Checkpoint], Awaitable[None]] = self.env.persistence.persist_checkpoint
        if self._write_last is not None and self._is_last():
            # Nothing can follow it: no input is taken from here on, so the lease may
            # go with the write.
            self.accepting = False
            self.draining = True
            self.wrote_last = True
            write = self._write_last
        try:
            await write(checkpoint)
        except BaseException as exc:
            self._write_error = exc
            self.accepting = False
            self.stop_others(None)
            raise
        finally:
            self._inflight = set()
        if finishing:
            # Stored: whoever looks from here on finds the end in the store.
            self.end_stored = True
        if self.wrote_last and self._sleep_scope is not None:
            # A command's checkpoint ended the pass while it waited within the hold
            # window: the lease is gone, so the pass ends now, not at the wake.
            self._sleep_scope.cancel()
        for event in pending.lifecycle:
            self.env.publish(event)
        if checkpoint.opened_subscriptions:
            await self.env.on_subscribed(
                list(checkpoint.opened_subscriptions), checkpoint.found_pending
            )
        if finishing:
            await self.env.on_finished(inst, list(checkpoint.events))

    # -- external input ----------------------------------------------------------

    def _is_last(self) -> bool:
        """Whether the checkpoint being written ends the pass: no step runs, none is
        runnable within the hold window once it is stored (see :meth:`_run`), and the
        instance is decided (its ``next_execution`` set for this checkpoint)."""
        if self.running:
            return False
        inst = self.instance
        if self.draining or inst.status is not WorkflowStatus.RUNNABLE:
            return True
        wake = inst.next_execution
        return wake is None or wake - self.now() > self.env.hold_window

    async def deliver_event(
        self, subscription: EventSubscription, event: Event, *, mark_processed: bool
    ) -> bool:
        """Hand an event to the pointer of this (held) instance waiting on
        ``subscription``: the pointer receives it, the subscription closes and (with
        ``mark_processed``) the event is flagged, all in this run's next checkpoint.

        Returns ``False`` when this run no longer accepts input (the caller then goes
        through the store); ``True`` once the delivery is persisted or moot.
        """
        if not self.accepting:
            return False
        p = self.state.pointers.get(subscription.pointer_id)
        if p is None or not p.awaits_event():
            return True
        p.receive_event(event.data)
        self.state.activate(p)
        self.pending.closed_subscriptions.append(subscription.id)
        if mark_processed:
            self.pending.processed_events.append(event.id)
        await self._flush()
        if self._sleep_scope is not None:
            self._sleep_scope.cancel()
        if self.accepting:
            self._changed()
        return True


async def _through(
    middleware: Sequence[StepMiddleware],
    i: int,
    body: StepBody,
    ctx: StepExecutionContext,
    step_log: Callable[[StepExecutionContext, str, str], None] | None,
) -> ExecutionResult | None:
    """Run ``body`` through ``middleware[i:]``, its lines also to ``step_log`` (see
    :attr:`ExecutorEnv.step_log`). A module function, each ``proceed`` a ``partial`` of
    it: a closure calling itself would be a reference cycle, left with the step's
    context and body for the garbage collector after every step."""
    if i < len(middleware):
        proceed = functools.partial(_through, middleware, i + 1, body, ctx, step_log)
        return await middleware[i](ctx, body, proceed)
    if step_log is None:
        return await _body(body, ctx)
    outer = ctx.log_sink
    ctx.log_sink = functools.partial(_tee, outer, step_log, ctx)
    try:
        return await _body(body, ctx)
    finally:
        ctx.log_sink = outer  # (the tee refers to ctx: no cycle left behind)


async def _body(body: StepBody, ctx: StepExecutionContext) -> ExecutionResult | None:
    outcome: Any = body.run(ctx)
    if inspect.isawaitable(outcome):
        outcome = await outcome
    return outcome  # type: ignore[no-any-return]


def _tee(
    outer: LogSink,
    step_log: Callable[[StepExecutionContext, str, str], None],
    ctx: StepExecutionContext,
    stream: str,
    line: str,
) -> None:
    outer(stream, line)
    step_log(ctx, stream, line)


async def _take(lock: trio.Lock | trio.CapacityLimiter) -> None:
    """Acquire ``lock`` without a scheduler round when it is free (``acquire`` always
    yields): a step and its checkpoint yield at the write anyway, so no task starves."""
    await trio.lowlevel.checkpoint_if_cancelled()
    try:
        lock.acquire_nowait()
    except trio.WouldBlock:
        await lock.acquire()
