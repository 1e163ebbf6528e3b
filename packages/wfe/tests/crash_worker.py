"""A host process for the crash-boundary and fencing tests (a script, not collected).

    python crash_worker.py DB LOG start KIND COUNT   # start COUNT workflows, run them
                                                     # (KIND seq5, wait, fence or mum)
    python crash_worker.py DB LOG park               # run until every stored workflow waits
    python crash_worker.py DB LOG publish            # publish each waiting workflow's event
    python crash_worker.py DB LOG publish-here       # the same, published by this worker
    python crash_worker.py DB LOG finish             # run until every stored workflow ended
    python crash_worker.py DB LOG fence ROLE         # the fencing scenario's host ROLE (a|b)
    python crash_worker.py DB LOG purge              # purge everything ended (host.purge)
    python crash_worker.py DB LOG indexed            # run until search shows all stored ended

``WFE_CRASH=OP:WHEN:N`` makes the process SIGKILL itself at a write boundary: right
``before`` or ``after`` the Nth call of the store's ``OP`` (``persist_checkpoint``,
``deliver_event`` (with ``deliver_event_claiming`` and ``deliver_event_leased``),
``create_workflow`` (an eager
start's ``create_workflow_leased`` counts as one), ``create_event`` (with
``create_event_leased``), ``claim_workflow``,
``releasing_checkpoint`` (a pass's last checkpoint, which gives the lease up; it counts
as a ``persist_checkpoint`` too),
``purge_workflows``, ``purge_events``, ``get_workflows``: the index consumer reading a
batch it has taken, killed there only once the run's workflows have all ended), or the
Nth ``delivery`` of an event (through the store, or in the checkpoint of a run that held
the workflow).
``WFE_VISIBILITY`` sets the queues' visibility timeout (seconds).
``WFE_LOCKS`` names a lock store other than the workflow store (a second SQLite file).
``WFE_SEARCH_APART=1`` opens the search index as a provider of its own on the workflow
store's URL, not as the store's companion: a store that writes a finished workflow's
document with its final checkpoint then indexes it through the host's index queue too.
DB is a SQLite file, or a store URL (``postgresql://...?schema=...``) used as it is.
Every step and every
checkpoint outcome is appended to LOG (``O_APPEND`` lines are atomic), so the test
sees what ran, where, and what the store accepted.
"""

# The log and flag files are written by other processes: polling them is the point.
# ruff: noqa: ASYNC251
from __future__ import annotations

import logging
import os
import signal
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import trio

from wfe.core import (
    PointerStatus,
    StaleLeaseError,
    StepExecutionContext,
    WorkflowBuilder,
    WorkflowStatus,
)
from wfe.core.protocols import Checkpoint, EventDelivery, SearchFilters
from wfe.host import WorkflowHostBuilder
from wfe.sqlite import SqlitePersistenceProvider

DB, LOG, MODE = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
STORE_URL = DB if "://" in DB else f"sqlite:///{DB}"
if STORE_URL.startswith("postgres"):
    from wfe.postgres import PostgresPersistenceProvider as StoreBase
else:
    StoreBase = SqlitePersistenceProvider  # type: ignore[assignment,misc]
ARGS = sys.argv[4:]
ROLE = ARGS[0] if MODE == "fence" else str(os.getpid())
GO = LOG.with_suffix(".go")
ENDED = trio.Event()  # set once the workflows this process started have all ended


def record(*parts: Any) -> None:
    line = " ".join(str(p) for p in (*parts, ROLE)) + "\n"
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def a_outcomes() -> list[str]:
    """Host a's outcomes so far: a checkpoint stored or refused, or its run stopped
    because its lease renewal failed (whichever comes first after it wakes)."""
    lines = LOG.read_text().splitlines() if LOG.exists() else []
    kinds = ("stored", "refused", "lease-lost")
    return [x for x in lines if x.endswith(" a") and x.split()[0] in kinds]


class LeaseLossToLog(logging.Handler):
    """Writes the host's "lost the lease" warning to LOG, so the test can see it."""

    def emit(self, record_: logging.LogRecord) -> None:
        if record_.getMessage().startswith("lost the lease"):
            record("lease-lost", str(record_.args[0] if record_.args else ""))


logging.getLogger("wfe.host").addHandler(LeaseLossToLog())


class CrashingStore(StoreBase):  # type: ignore[misc,valid-type]
    """The real store (SQLite or PostgreSQL), killing its own process at the boundary
    WFE_CRASH names."""

    def __init__(self, url: str) -> None:
        visibility = os.environ.get("WFE_VISIBILITY")
        super().__init__(url, **({"visibility_timeout": float(visibility)} if visibility else {}))
        op, when, n = (os.environ.get("WFE_CRASH") or "none:never:0").split(":")
        self._crash = (op, when, int(n))
        self._calls: dict[str, int] = {}

    def _boundary(self, op: str, when: str, number: int) -> None:
        want_op, want_when, n = self._crash
        if op == want_op and when == want_when and number == n:
            record("killed", op, when, n)
            os.kill(os.getpid(), signal.SIGKILL)

    async def _around(
        self, op: str, call: Any, *, delivery: bool = False, also: tuple[str, ...] = ()
    ) -> Any:
        """Count the call (as ``op``, as ``delivery`` when it delivers an event,
        through the store or inside a held run's checkpoint, and as each of ``also``)
        and die where told."""
        numbers: dict[str, int] = {}
        for name in [op, *(["delivery"] if delivery else []), *also]:
            # Calls overlap (concurrent runs): each knows its own number.
            numbers[name] = self._calls[name] = self._calls.get(name, 0) + 1
            self._boundary(name, "before", numbers[name])
        result = await call
        for name, number in numbers.items():
            self._boundary(name, "after", number)
        return result

    async def create_workflow(self, instance: Any) -> str:
        return await self._around("create_workflow", super().create_workflow(instance))  # type: ignore[no-any-return]

    async def create_workflow_leased(self, instance: Any, *args: Any) -> Any:
        # A create all the same (the host's eager start, with the lease in its write).
        return await self._around(
            "create_workflow", super().create_workflow_leased(instance, *args)
        )

    async def create_event(self, event: Any) -> str:
        return await self._around("create_event", super().create_event(event))  # type: ignore[no-any-return]

    async def create_event_leased(self, event: Any, *args: Any) -> Any:
        # A create all the same (an event published here, stored with its lease).
        return await self._around("create_event", super().create_event_leased(event, *args))

    async def claim_workflow(self, workflow_id: str, fencing_token: int) -> Any:
        return await self._around(
            "claim_workflow", super().claim_workflow(workflow_id, fencing_token)
        )

    async def deliver_event(self, delivery: EventDelivery) -> bool:
        return await self._around(  # type: ignore[no-any-return]
            "deliver_event", super().deliver_event(delivery), delivery=True
        )

    async def deliver_event_claiming(self, delivery: EventDelivery) -> Any:
        # A delivery all the same (its write also claims the instance, to run it here).
        return await self._around(
            "deliver_event", super().deliver_event_claiming(delivery), delivery=True
        )

    async def deliver_event_leased(self, delivery: EventDelivery, *args: Any, **kw: Any) -> Any:
        # A delivery all the same (its write also takes the lease and claims, and may
        # give the event's lease up): logged, so a test sees this path was the one.
        record("leased-delivery", "releasing" if kw.get("release") else "keeping")
        return await self._around(
            "deliver_event", super().deliver_event_leased(delivery, *args, **kw), delivery=True
        )

    async def purge_workflows(self, *args: Any, **kwargs: Any) -> Any:
        return await self._around("purge_workflows", super().purge_workflows(*args, **kwargs))

    async def purge_events(self, *args: Any, **kwargs: Any) -> Any:
        return await self._around("purge_events", super().purge_events(*args, **kwargs))

    async def get_workflows(self, workflow_ids: Any, *, with_pointers: bool = True) -> Any:
        if self._crash[0] == "get_workflows":
            # Holding the batch (taken, not acknowledged) until every workflow has
            # ended: its items are then the only index requests of their instances.
            await ENDED.wait()
        return await self._around(
            "get_workflows", super().get_workflows(workflow_ids, with_pointers=with_pointers)
        )

    async def persist_checkpoint(self, checkpoint: Checkpoint) -> None:
        await self._checkpoint(checkpoint, super().persist_checkpoint(checkpoint))

    async def persist_checkpoint_releasing(self, checkpoint: Checkpoint, *args: Any) -> None:
        # A checkpoint all the same (the last of a pass, giving the lease up with it):
        # counted also as ``releasing_checkpoint``, and logged.
        record("releasing-checkpoint", checkpoint.instance.id)
        await self._checkpoint(
            checkpoint,
            super().persist_checkpoint_releasing(checkpoint, *args),
            also=("releasing_checkpoint",),
        )

    async def _checkpoint(
        self, checkpoint: Checkpoint, call: Any, also: tuple[str, ...] = ()
    ) -> None:
        wid = checkpoint.instance.id
        try:
            await self._around(
                "persist_checkpoint",
                call,
                delivery=bool(checkpoint.processed_events),
                also=also,
            )
        except StaleLeaseError:
            record("refused", wid, checkpoint.fencing_token)
            raise
        record("stored", wid, checkpoint.fencing_token, checkpoint.instance.status.value)


def step(n: int) -> Any:
    def body(ctx: StepExecutionContext) -> None:
        record("step", ctx.workflow.id, n)
        ctx.workflow.data[f"s{n}"] = ROLE

    return body


async def fence_step(ctx: StepExecutionContext) -> None:
    """Host a blocks its event loop here (so it cannot renew its lease) until told to
    go on; host b, the new owner, stays here until a's stale write has been tried."""
    record("step2-start", ctx.workflow.id)
    if ROLE == "a":
        while not GO.exists():
            time.sleep(0.02)  # blocking on purpose: the lease lapses
    else:
        seen = len(a_outcomes())
        while len(a_outcomes()) == seen:
            await trio.sleep(0.02)
    ctx.workflow.data["s2"] = ROLE
    record("step2-end", ctx.workflow.id)


SEQ = WorkflowBuilder(dict).start_with(step(1))
for _n in range(2, 6):
    SEQ = SEQ.then(step(_n))
SEQ5 = SEQ.build("seq5", 1)
WAIT = (
    WorkflowBuilder(dict)
    .start_with(step(1))
    .wait_for("go", lambda d, ctx: ctx.workflow.id)
    .output("event", lambda s: s.event_data)
    .then(step(3))
    .build("wait", 1)
)
FENCE = WorkflowBuilder(dict).start_with(step(1)).then(fence_step).then(step(3)).build("fence", 1)
# A parent running SEQ5 as its child (sub-workflow), then one step of its own.
MUM = (
    WorkflowBuilder(dict).start_with(step(1)).sub_workflow("seq5", 1).then(step(3)).build("mum", 1)
)


async def wait_all_ended(host: Any) -> None:
    while True:
        runnable = await host.list_workflows(status=WorkflowStatus.RUNNABLE, take=10_000)
        if not runnable:
            return
        await trio.sleep(0.05)


async def publish_all() -> None:
    """Store every waiting workflow's event first (a client host runs nothing), so a
    kill during delivery cannot prevent an event from being published."""
    client = WorkflowHostBuilder().persistence(STORE_URL).run_workflows(False)
    async with client.build() as host:
        waiting = await host.list_workflows(status=WorkflowStatus.RUNNABLE, take=10_000)
        for w in waiting:
            await host.publish_event("go", w.id, {"for": w.id})
            record("published", w.id)


async def main() -> None:
    if MODE == "publish":
        await publish_all()
    ttl = timedelta(seconds=1 if MODE == "fence" else 2)
    builder = (
        WorkflowHostBuilder()
        .persistence(CrashingStore(STORE_URL))
        .lease_ttl(ttl)
        .poll_interval(timedelta(milliseconds=200))
        .register(SEQ5)
        .register(WAIT)
        .register(FENCE)
        .register(MUM)
    )
    if os.environ.get("WFE_LOCKS"):
        builder = builder.locks(os.environ["WFE_LOCKS"])
    if os.environ.get("WFE_SEARCH_APART"):
        builder = builder.search(STORE_URL)
    async with builder.build() as host:
        if MODE == "start":
            kind, count = ARGS[0], int(ARGS[1])
            started = []
            for _ in range(count):
                wid = await host.start_workflow(kind, 1, {})
                record("started", wid)
                started.append(wid)
            if kind == "wait":
                # Stop once every wait is stored (its pointer waits in the store).
                with trio.fail_after(60):
                    for wid in started:
                        while not any(
                            p.status is PointerStatus.WAITING_FOR_EVENT
                            for p in (await host.get_workflow(wid)).execution_pointers
                        ):
                            await trio.sleep(0.05)
                print("waiting", flush=True)
                return
            await wait_all_ended(host)
            ENDED.set()
            if os.environ.get("WFE_CRASH", "").startswith("get_workflows:"):
                await trio.sleep_forever()  # killed by the index consumer's read
        elif MODE == "publish":
            await wait_all_ended(host)
        elif MODE == "publish-here":
            # This worker host publishes, so each event is stored (with its lease, on a
            # store that keeps them) and delivered here at once.
            waiting = await host.list_workflows(status=WorkflowStatus.RUNNABLE, take=10_000)
            for w in waiting:
                await host.publish_event("go", w.id, {"for": w.id})
                record("published", w.id)
            await wait_all_ended(host)
        elif MODE == "park":
            # Run until every stored workflow has ended or waits (its wait stored).
            with trio.fail_after(90):
                for listed in await host.list_workflows(take=10_000):
                    while True:
                        inst = await host.get_workflow(listed.id)
                        waits = any(
                            p.status is PointerStatus.WAITING_FOR_EVENT
                            for p in inst.execution_pointers
                        )
                        if waits or inst.status is not WorkflowStatus.RUNNABLE:
                            break
                        await trio.sleep(0.05)
            print("waiting", flush=True)
            return
        elif MODE == "purge":
            report = await host.purge(timedelta(0))
            record("purged", report.workflows, report.events)
        elif MODE == "indexed":
            stored = {w.id for w in await host.list_workflows(take=10_000)}
            ended = SearchFilters(status=WorkflowStatus.COMPLETE)
            with trio.fail_after(90):
                while True:
                    page = await host.search("", ended, take=1000)
                    found = [r for r in page.items if r.id in stored]
                    if len(found) == len(stored):
                        break
                    await trio.sleep(0.05)
            print(" ".join(sorted(r.status.value for r in found)), flush=True)
            return
        elif MODE == "finish":
            with trio.fail_after(90):
                await wait_all_ended(host)
        elif MODE == "fence":
            if ROLE == "a":
                wid = await host.start_workflow("fence", 1, {})
                record("started", wid)
            with trio.fail_after(90):
                await wait_all_ended(host)
        done = await host.list_workflows(take=10_000)
        print(" ".join(sorted(w.status.value for w in done)), flush=True)


if __name__ == "__main__":
    trio.run(main)
