"""Group commit: many callers' writes in one transaction, each stored or refused whole."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest
import trio
import trio.testing

from wfe.core import StaleLeaseError, WorkflowInstance, WorkflowStatus
from wfe.core.protocols import Checkpoint, QueueKind
from wfe.sqlite import SqlitePersistenceProvider, SqliteQueueProvider, SqliteSearchIndex, _writer
from wfe.sqlite._writer import Job

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def make_instance() -> WorkflowInstance:
    return WorkflowInstance(definition_id="d", version=1, data={"n": 0}, create_time=T0)


class WriterGate:
    """Holds the writer thread inside a write, so the writes submitted meanwhile queue up
    and run in the next batch (one transaction)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def hold(self, conn: sqlite3.Connection) -> None:
        self.entered.set()
        self.release.wait(10)

    async def occupy(self, store: SqlitePersistenceProvider) -> None:
        """Occupy the writer thread (never inline: that would block this test's loop)."""
        thread = store._db._thread
        assert thread is not None
        job = Job(self.hold)
        thread.submit(job)
        await trio.to_thread.run_sync(self.entered.wait)


def count_write_begins(store: SqlitePersistenceProvider) -> list[str]:
    """Write transactions (``BEGIN IMMEDIATE``) the write connections (thread and
    inline) begin from now on; small reads may run on the inline one too, in plain
    ``BEGIN`` snapshots."""
    seen: list[str] = []
    for proxied in (store._db._writer, store._db._inline):
        assert proxied is not None
        conn = proxied.driver_connection
        assert isinstance(conn, sqlite3.Connection)
        conn.set_trace_callback(
            lambda sql: seen.append(sql) if sql.upper().startswith("BEGIN IMMEDIATE") else None
        )
    return seen


async def in_one_batch(
    store: SqlitePersistenceProvider, writes: list[Callable[[], Awaitable[object]]]
) -> None:
    """Start ``writes`` (in this order) while the writer thread is held, so that all of
    them run in its next batch, one transaction; return once each has returned."""
    gate = WriterGate()
    async with trio.open_nursery() as nursery:
        await gate.occupy(store)
        for write in writes:
            nursery.start_soon(write)
            await trio.testing.wait_all_tasks_blocked()
        gate.release.set()


@contextlib.asynccontextmanager
async def indexing_store(
    path: Path,
) -> AsyncIterator[tuple[SqlitePersistenceProvider, SqliteSearchIndex]]:
    """A store on ``path`` whose checkpoints write the search documents of the
    workflows they end, and its search index."""
    async with (
        SqlitePersistenceProvider(f"sqlite:///{path}") as store,
        store.default_search() as search,
    ):
        assert store.index_ended_in_checkpoints(search)
        yield store, search


async def ended_instances(store: SqlitePersistenceProvider, n: int) -> list[WorkflowInstance]:
    """``n`` workflows stored, then marked COMPLETE in memory (their next checkpoint ends
    them and writes their search document), references ``order0``, ``order1``, ..."""
    ended = [make_instance() for _ in range(n)]
    for i, inst in enumerate(ended):
        inst.reference = f"order{i}"
        await store.create_workflow(inst)
        inst.status = WorkflowStatus.COMPLETE
        inst.complete_time = T0
    return ended


def wal_size(path: Path) -> int:
    return Path(f"{path}-wal").stat().st_size


async def checkpoints(store: SqlitePersistenceProvider, inst: WorkflowInstance, n: int) -> None:
    """``n`` checkpoints of ``inst`` one after another, its data ``{"n": i}`` in each."""
    for i in range(n):
        inst.data = {"n": i}
        await store.persist_checkpoint(Checkpoint(instance=inst))


def read_data(path: Path, workflow_id: str) -> str:
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT data FROM workflows WHERE id = ?", (workflow_id,)).fetchone()
    return str(row[0]) if row else ""


async def test_a_stale_checkpoint_in_a_batch_is_refused_alone(tmp_path: Path) -> None:
    """Three checkpoints commit in one transaction; the one whose fencing token was
    superseded is refused (StaleLeaseError) and leaves its row untouched, the other two
    are stored."""
    path = tmp_path / "wfe.db"
    async with SqlitePersistenceProvider(f"sqlite:///{path}") as store:
        a, b, c = make_instance(), make_instance(), make_instance()
        for inst in (a, b, c):
            await store.create_workflow(inst)
            await store.claim_workflow(inst.id, 1)
        await store.claim_workflow(b.id, 2)  # b passed to a new owner
        for inst in (a, b, c):
            inst.data = {"n": 1}
        gate = WriterGate()
        begins = count_write_begins(store)
        outcomes: dict[str, str] = {}

        async def persist(inst: WorkflowInstance) -> None:
            try:
                await store.persist_checkpoint(Checkpoint(instance=inst, fencing_token=1))
                outcomes[inst.id] = "stored"
            except StaleLeaseError:
                outcomes[inst.id] = "refused"

        async with trio.open_nursery() as nursery:
            await gate.occupy(store)
            for inst in (a, b, c):
                nursery.start_soon(persist, inst)
            await trio.testing.wait_all_tasks_blocked()
            gate.release.set()
        assert outcomes == {a.id: "stored", b.id: "refused", c.id: "stored"}
        # The gate's transaction, then one for all three checkpoints.
        assert len(begins) == 2
        assert read_data(path, a.id) == read_data(path, c.id) == '{"n":1}'
        assert read_data(path, b.id) == '{"n":0}'


async def test_a_failing_write_rolls_back_only_its_own_statements(tmp_path: Path) -> None:
    """A write raising after its first statement keeps none of it; the writes batched
    with it commit."""
    path = tmp_path / "wfe.db"
    async with SqlitePersistenceProvider(f"sqlite:///{path}") as store:
        a, b = make_instance(), make_instance()
        for inst in (a, b):
            await store.create_workflow(inst)

        def fails(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE workflows SET data = '\"lost\"' WHERE id = ?", (a.id,))
            raise RuntimeError("refused half way")

        def succeeds(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE workflows SET data = '\"kept\"' WHERE id = ?", (b.id,))

        gate = WriterGate()
        errors: list[BaseException] = []

        async def attempt() -> None:
            try:
                await store._db.write(fails)
            except RuntimeError as exc:
                errors.append(exc)

        async with trio.open_nursery() as nursery:
            await gate.occupy(store)
            nursery.start_soon(attempt)
            nursery.start_soon(store._db.write, succeeds)
            await trio.testing.wait_all_tasks_blocked()
            gate.release.set()
        assert [str(e) for e in errors] == ["refused half way"]
        assert read_data(path, a.id) == '{"n":0}'
        assert read_data(path, b.id) == '"kept"'


async def test_a_write_returns_only_once_committed(tmp_path: Path) -> None:
    """While the batch holding a checkpoint has not committed, its caller waits and
    another connection does not see it; once the caller returns, it does."""
    path = tmp_path / "wfe.db"
    async with SqlitePersistenceProvider(f"sqlite:///{path}") as store:
        inst = make_instance()
        await store.create_workflow(inst)
        await store.claim_workflow(inst.id, 1)
        inst.status = WorkflowStatus.COMPLETE
        inst.data = {"n": 2}
        gate = WriterGate()
        returned = trio.Event()

        async def persist() -> None:
            await store.persist_checkpoint(Checkpoint(instance=inst, fencing_token=1))
            returned.set()

        async with trio.open_nursery() as nursery:
            await gate.occupy(store)
            nursery.start_soon(persist)
            await trio.testing.wait_all_tasks_blocked()
            assert not returned.is_set()
            assert read_data(path, inst.id) == '{"n":0}'
            gate.release.set()
            await returned.wait()
            assert read_data(path, inst.id) == '{"n":2}'


@pytest.mark.parametrize("kind", [QueueKind.WORKFLOW, QueueKind.EVENT])
async def test_posted_enqueue_is_seen_by_the_next_dequeue(tmp_path: Path, kind: QueueKind) -> None:
    """An enqueue returns before its commit, but writes commit in submission order: a
    dequeue right after it (even without waiting) takes the item."""
    async with SqliteQueueProvider(f"sqlite:///{tmp_path / 'q.db'}") as queues:
        await queues.enqueue(kind, "first")
        item = await queues.dequeue(kind, 0)
        assert item is not None
        assert item.item_id == "first"


async def test_an_empty_dequeue_takes_no_write_transaction(tmp_path: Path) -> None:
    """Once a kind was found empty and nothing was enqueued since, dequeuing it waits
    (polling with reads) without a write transaction; an enqueue still wakes it."""
    path = tmp_path / "wfe.db"
    store = SqlitePersistenceProvider(f"sqlite:///{path}", poll_interval=0.01)
    async with store, store.default_queues() as queues:
        await queues.enqueue(QueueKind.WORKFLOW, "only")
        item = await queues.dequeue(QueueKind.WORKFLOW, 1)
        assert item is not None
        await queues.ack(item)
        await store._db.write(lambda conn: None)  # the posted ack has committed
        assert await queues.dequeue(QueueKind.WORKFLOW, 0) is None  # learns: empty
        begins = count_write_begins(store)
        assert await queues.dequeue(QueueKind.WORKFLOW, 0.05) is None
        assert begins == []
        got: list[str] = []
        async with trio.open_nursery() as nursery:

            async def take() -> None:
                taken = await queues.dequeue(QueueKind.WORKFLOW, 5)
                got.append(taken.item_id if taken else "")

            nursery.start_soon(take)
            await trio.testing.wait_all_tasks_blocked()
            await queues.enqueue(QueueKind.WORKFLOW, "later")
        assert got == ["later"]


async def test_with_synchronous_full_no_write_commits_on_the_trio_thread(tmp_path: Path) -> None:
    """A commit that syncs the disk never runs on the trio thread: every write
    transaction begins on the writer thread's connection."""
    path = tmp_path / "wfe.db"
    async with SqlitePersistenceProvider(f"sqlite:///{path}", synchronous="FULL") as store:
        inline_begins: list[str] = []
        proxied = store._db._inline
        assert proxied is not None
        conn = proxied.driver_connection
        assert isinstance(conn, sqlite3.Connection)
        conn.set_trace_callback(
            lambda sql: inline_begins.append(sql) if sql.upper().startswith("BEGIN IMM") else None
        )
        inst = make_instance()
        await store.create_workflow(inst)
        await store.claim_workflow(inst.id, 1)
        inst.data = {"n": 3}
        await store.persist_checkpoint(Checkpoint(instance=inst, fencing_token=1))
        assert inline_begins == []
        assert read_data(path, inst.id) == '{"n":3}'


async def test_a_cancelled_write_ends_before_its_caller_sees_cancelled(tmp_path: Path) -> None:
    """Cancelled while its batch waits for the writer thread, the caller stays until the
    write has committed, then sees the Cancelled at its next checkpoint."""
    path = tmp_path / "wfe.db"
    async with SqlitePersistenceProvider(f"sqlite:///{path}") as store:
        gate = WriterGate()
        inst = make_instance()
        seen: list[str] = []
        scope = trio.CancelScope()

        async def create() -> None:
            with scope:
                await store.create_workflow(inst)
                seen.append("returned")
                await trio.lowlevel.checkpoint()
                seen.append("not cancelled")
            seen.append("cancelled" if scope.cancelled_caught else "finished")

        async with trio.open_nursery() as nursery:
            await gate.occupy(store)
            nursery.start_soon(create)
            await trio.testing.wait_all_tasks_blocked()
            scope.cancel()
            await trio.testing.wait_all_tasks_blocked()
            assert seen == []  # still waiting for its write
            gate.release.set()
        assert seen == ["returned", "cancelled"]
        assert read_data(path, inst.id) == '{"n":0}'


async def test_the_wal_is_reused_under_a_steady_stream_of_writes(tmp_path: Path) -> None:
    """The periodic WAL checkpoint completes, so a later write starts the WAL over: its
    file stops growing once it holds one checkpoint interval, however many writes
    follow (a checkpoint that always lags behind the writes would never let it)."""
    path = tmp_path / "wfe.db"
    async with SqlitePersistenceProvider(f"sqlite:///{path}") as store:
        inst = make_instance()
        await store.create_workflow(inst)
        steps = partial(checkpoints, store, inst)

        await steps(_writer._CHECKPOINT_EVERY * 2)
        after_two = wal_size(path)
        await steps(_writer._CHECKPOINT_EVERY * 6)
        assert wal_size(path) <= after_two * 2


async def test_writes_go_on_inline_while_the_wal_is_checkpointed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The periodic WAL checkpoint runs on a connection and thread of its own: while it
    is under way the writes still commit inline, none waiting for it; then the writer
    thread checkpoints what was committed meanwhile, so the WAL is started over."""
    inside, release = threading.Event(), threading.Event()
    real = _writer._checkpoint_wal

    def held(conn: sqlite3.Connection) -> None:
        if threading.current_thread().name.startswith("wfe-sqlite-checkpointer"):
            inside.set()
            release.wait(30)
        real(conn)

    monkeypatch.setattr(_writer, "_checkpoint_wal", held)
    path = tmp_path / "wfe.db"
    async with SqlitePersistenceProvider(f"sqlite:///{path}") as store:
        inst = make_instance()
        await store.create_workflow(inst)
        steps = partial(checkpoints, store, inst)

        await steps(_writer._CHECKPOINT_EVERY)
        assert await trio.to_thread.run_sync(inside.wait, 30), "no checkpoint was asked for"
        inline = store._db._inline
        assert inline is not None
        inline_conn = inline.driver_connection
        assert isinstance(inline_conn, sqlite3.Connection)
        inline_begins: list[str] = []
        inline_conn.set_trace_callback(
            lambda sql: inline_begins.append(sql) if sql.startswith("BEGIN IMMEDIATE") else None
        )
        await steps(50)
        assert len(inline_begins) == 50  # each committed inline, the checkpoint under way
        inline_conn.set_trace_callback(None)
        release.set()
        frames_before = wal_size(path)
        await steps(_writer._CHECKPOINT_EVERY * 4)
        # Started over after the catch-up: the WAL file holds about one interval.
        assert wal_size(path) <= frames_before * 2
    assert read_data(path, inst.id) == '{"n":799}'


async def test_writes_finding_the_writer_thread_at_work_wait_then_run_inline(
    tmp_path: Path,
) -> None:
    """Writes that find the writer thread at work (a WAL checkpoint, say) are held back
    on the trio side rather than queued in the thread one batch each; once it is done
    they run inline, together, in one transaction."""
    path = tmp_path / "wfe.db"
    async with SqlitePersistenceProvider(f"sqlite:///{path}") as store:
        gate = WriterGate()
        thread, inline = store._db._thread, store._db._inline
        assert thread is not None
        assert inline is not None
        conn = inline.driver_connection
        assert isinstance(conn, sqlite3.Connection)
        inline_begins: list[str] = []
        conn.set_trace_callback(
            lambda sql: inline_begins.append(sql) if sql.startswith("BEGIN IMMEDIATE") else None
        )
        a, b = make_instance(), make_instance()
        async with trio.open_nursery() as nursery:
            await gate.occupy(store)
            nursery.start_soon(store.create_workflow, a)
            nursery.start_soon(store.create_workflow, b)
            await trio.testing.wait_all_tasks_blocked()
            queued_in_thread = len(thread._jobs)
            gate.release.set()
        assert queued_in_thread == 0
        assert inline_begins == ["BEGIN IMMEDIATE"]
        assert read_data(path, a.id) == read_data(path, b.id) == '{"n":0}'


async def test_a_batch_with_a_failing_write_runs_again_with_each_write_alone(
    tmp_path: Path,
) -> None:
    """The writes of a batch share one savepoint; one failing in the middle rolls the
    batch back to it and the batch runs again in the same transaction, each write in a
    savepoint of its own: the others commit with their results, the failing one keeps
    nothing."""
    path = tmp_path / "wfe.db"
    async with SqlitePersistenceProvider(f"sqlite:///{path}") as store:
        a, b, c = make_instance(), make_instance(), make_instance()
        for inst in (a, b, c):
            await store.create_workflow(inst)

        def write(wid: str, value: str, fail: bool, conn: sqlite3.Connection) -> str:
            conn.execute("UPDATE workflows SET data = ? WHERE id = ?", (f'"{value}"', wid))
            if fail:
                raise RuntimeError(f"{value} refused")
            return value

        begins = count_write_begins(store)
        results: dict[str, object] = {}

        async def attempt(inst: WorkflowInstance, value: str, fail: bool) -> None:
            try:
                results[value] = await store._db.write(partial(write, inst.id, value, fail))
            except RuntimeError as exc:
                results[value] = str(exc)

        await in_one_batch(
            store,
            [
                partial(attempt, a, "first", False),
                partial(attempt, b, "second", True),
                partial(attempt, c, "third", False),
            ],
        )
        assert results == {"first": "first", "second": "second refused", "third": "third"}
        assert len(begins) == 2  # the gate's transaction, then the batch's
        assert read_data(path, a.id) == '"first"'
        assert read_data(path, b.id) == '{"n":0}'
        assert read_data(path, c.id) == '"third"'


async def test_the_search_documents_of_a_batch_go_into_one_fts5_segment(tmp_path: Path) -> None:
    """Checkpoints batched in one transaction that each end a workflow write their
    search documents' terms into one new FTS5 segment: no savepoint, and no statement
    with a statement journal, opens between them (either makes FTS5 write the terms it
    holds out as a segment of their own, to be merged again later)."""
    path = tmp_path / "wfe.db"
    async with indexing_store(path) as (store, search):
        ended = await ended_instances(store, 12)
        await in_one_batch(
            store, [partial(store.persist_checkpoint, Checkpoint(instance=i)) for i in ended]
        )
        assert (await search.search("COMPLETE")).total == len(ended)
    with sqlite3.connect(path) as conn:
        (segments,) = conn.execute("SELECT count(DISTINCT segid) FROM search_fts_idx").fetchone()
    assert segments == 1


async def test_a_refused_checkpoint_leaves_the_batchs_search_documents_whole(
    tmp_path: Path,
) -> None:
    """A stale checkpoint among ending ones: the batch runs again write by write; the
    others' documents are searchable, the refused one's is not, and the FTS5 index
    passes its integrity check."""
    path = tmp_path / "wfe.db"
    async with indexing_store(path) as (store, search):
        ended = await ended_instances(store, 6)
        for inst in ended:
            await store.claim_workflow(inst.id, 1)
        stale = ended[3]
        await store.claim_workflow(stale.id, 2)  # passed to a new owner
        refused: list[str] = []

        async def persist(inst: WorkflowInstance) -> None:
            try:
                await store.persist_checkpoint(Checkpoint(instance=inst, fencing_token=1))
            except StaleLeaseError:
                refused.append(inst.id)

        await in_one_batch(store, [partial(persist, inst) for inst in ended])
        assert refused == [stale.id]
        found = await search.search("COMPLETE")
        assert sorted(r.id for r in found.items) == sorted(i.id for i in ended if i is not stale)
        assert (await search.search(stale.reference or "")).total == 0
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO search_fts(search_fts) VALUES ('integrity-check')")
