"""One SQLite database shared by the persistence, lock, queue and search providers.

Every provider call runs a whole transaction's statements on a raw DBAPI connection:
a thread hop costs ~140-370 µs and SQLAlchemy's statement path ~330 µs per transaction
(TECH-NOTES.md), so neither is paid per statement. SQLAlchemy's engine owns connection
set-up (pragmas in a ``connect`` hook, ``BEGIN IMMEDIATE`` in a ``begin`` hook) and the
schema migrations.

Writes go to one connection owned by one writer thread (:mod:`._writer`), which commits
every write waiting when it wakes in one ``BEGIN IMMEDIATE`` transaction, each in its own
savepoint (group commit; a deferred ``BEGIN`` fails with "database is locked" under
concurrent writers even with a busy timeout). Reads of a file use a small pool of their
own connections in worker threads (WAL lets them run beside the writer). ``:memory:`` is
one connection, so its reads are jobs of the writer thread too.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy.exc
import trio
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.pool import NullPool, PoolProxiedConnection, StaticPool

from wfe.core import ConfigurationError, ProviderError, StoreLostError, WfeError

from ._schema import migrate
from ._writer import Inline, Job, Writer, finish

T = TypeVar("T")

log = logging.getLogger("wfe.sqlite")

_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
_URL_FORMS = "sqlite:///relative/path.db, sqlite:////absolute/path.db or sqlite://:memory:"


def parse_url(url: str) -> Path | None:
    """The database file named by a ``sqlite:`` URL, or ``None`` for ``:memory:``."""
    if not isinstance(url, str) or not url.startswith("sqlite:"):
        raise ConfigurationError(f"not a SQLite URL: {url!r}; expected {_URL_FORMS}")
    rest = url[len("sqlite:") :]
    if rest in ("//:memory:", "///:memory:", "//"):
        return None
    if not rest.startswith("///") or rest == "///":
        raise ConfigurationError(f"SQLite URL {url!r} names no file; expected {_URL_FORMS}")
    if "?" in rest:
        raise ConfigurationError(
            f"SQLite URL {url!r} has a query string; pass options as keyword arguments"
        )
    return Path(rest[3:])


def wall_us() -> int:
    """Wall-clock microseconds since the epoch: what visibility rows hold, so every
    process sharing the file reads the same clock."""
    return time.time_ns() // 1000


_BOOTTIME: int | None = getattr(time, "CLOCK_BOOTTIME", None)
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
BOOT_ROW = "wfe:boot"
"""The ``locks`` row naming the boot whose clock the lease rows are on (its owner)."""


def lease_us() -> int:
    """Microseconds on the clock lease rows use: ``CLOCK_BOOTTIME`` where there is one
    (Linux), else the wall clock. It is machine-wide, and every process sharing a file
    is on one machine (WAL needs shared memory), so they all read the same clock; and
    it never steps when the wall clock is corrected: a forward step would expire every
    held lease (the steps in flight would run twice), a backward one stretch them."""
    if _BOOTTIME is not None:
        return time.clock_gettime_ns(_BOOTTIME) // 1000
    return wall_us()


def boot_id() -> str:
    """This boot's id: lease rows written during another boot are on another clock."""
    if _BOOTTIME is None:
        return "wall-clock"
    try:
        return _BOOT_ID.read_text().strip() or "unknown"
    except OSError:
        return "unknown"


def adopt_boot(conn: Any) -> None:
    """On opening: when the lease rows were written during another boot (or on the wall
    clock, by an older release), every lease in them ended with it (its holders are
    gone): mark them expired, keeping their fencing tokens, and record this boot."""
    current = boot_id()
    row = conn.exec_driver_sql("SELECT owner FROM locks WHERE resource = ?", (BOOT_ROW,)).fetchone()
    if row is not None and row[0] == current:
        return
    conn.exec_driver_sql("UPDATE locks SET expires_at = 0 WHERE resource <> ?", (BOOT_ROW,))
    conn.exec_driver_sql(
        "INSERT INTO locks (resource, owner, token, expires_at) VALUES (?, ?, 0, 0) "
        "ON CONFLICT (resource) DO UPDATE SET owner = excluded.owner",
        (BOOT_ROW, current),
    )


class Database:
    """A reference-counted SQLite database: opened by the first provider entered,
    closed when the last one leaves. Also carries the in-process queue wake-ups."""

    def __init__(
        self,
        path: Path | None,
        *,
        synchronous: str = "NORMAL",
        busy_timeout: float = 5.0,
        create_parents: bool = False,
        read_connections: int = 4,
        visibility_timeout: float = 30.0,
        poll_interval: float = 0.05,
    ) -> None:
        if synchronous.upper() not in _SYNCHRONOUS:
            raise ConfigurationError(
                f"synchronous={synchronous!r} is not one of {', '.join(_SYNCHRONOUS)}"
            )
        for name, value in (
            ("busy_timeout", busy_timeout),
            ("visibility_timeout", visibility_timeout),
            ("poll_interval", poll_interval),
        ):
            if not value > 0:
                raise ConfigurationError(f"{name} must be positive, got {value!r}")
        if read_connections < 1:
            raise ConfigurationError(f"read_connections must be >= 1, got {read_connections!r}")
        self.path = None if path is None else path.absolute()
        self.label = ":memory:" if self.path is None else str(self.path)
        self.synchronous = synchronous.upper()
        self.busy_timeout = busy_timeout
        self.create_parents = create_parents
        self.read_connections = read_connections
        # Options the queue companion inherits.
        self.visibility_timeout = visibility_timeout
        self.poll_interval = poll_interval
        self._users = 0
        self._open_lock = trio.Lock()
        self._engine: Engine | None = None
        self._writer: PoolProxiedConnection | None = None
        self._thread: Writer | None = None
        self._inline: PoolProxiedConnection | None = None
        self._checkpoint_conn: PoolProxiedConnection | None = None
        # Writes of the current trio tick, run together at its end (see _queue).
        self._pending: list[Job] = []
        self._flush_scheduled = False
        self._readers: list[PoolProxiedConnection] = []
        self._all_readers: list[PoolProxiedConnection] = []
        self._readers_lock = threading.Lock()
        # Opening and closing (the writer thread runs everything in between).
        self._write_limiter = trio.CapacityLimiter(1)
        self._read_limiter = trio.CapacityLimiter(read_connections)
        self._wakeups: dict[str, trio.Event] = {}
        # The opened file's (st_dev, st_ino), and the error once it is gone (see check_file).
        self._identity: tuple[int, int] | None = None
        self._lost: StoreLostError | None = None
        # Per kind: enqueues submitted by this process so far, and that count when a take
        # last found the kind empty (equal: still empty, as far as this process knows;
        # writes run in submission order, so a take sees every enqueue submitted before).
        self._enqueued: dict[str, int] = {}
        self._empty_at: dict[str, tuple[int, int | None]] = {}

    @property
    def is_memory(self) -> bool:
        return self.path is None

    # -- lifecycle -----------------------------------------------------------------

    async def acquire(self) -> None:
        """Open the database if this is its first user."""
        async with self._open_lock:
            if self._users == 0:
                await trio.to_thread.run_sync(self._open, limiter=self._write_limiter)
            self._users += 1

    async def release(self) -> None:
        """Close the database when its last user leaves."""
        async with self._open_lock:
            if self._users == 0:
                return
            self._users -= 1
            if self._users == 0:
                # Writes of this tick not yet flushed (posted releases, acks, enqueues,
                # or writes held back behind the writer thread) go to the thread, which
                # commits everything queued before it stops: none is lost to the close.
                pending = self._take_pending()
                self._flush_scheduled = False
                if pending and self._thread is not None:
                    self._thread.submit(*pending)
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(self._close, limiter=self._write_limiter)
                self._wakeups.clear()

    def _check_path(self, path: Path) -> None:
        parent = path.parent
        if not parent.is_dir():
            if not self.create_parents:
                raise ConfigurationError(
                    f"cannot open SQLite store {path}: directory {parent} does not exist "
                    "(create it, or pass create_parents=True)"
                )
            try:
                parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigurationError(
                    f"cannot create directory {parent} for SQLite store {path}: {exc}"
                ) from exc
        if path.exists():
            st = path.stat()
            if stat.S_ISDIR(st.st_mode):
                raise ConfigurationError(f"cannot open SQLite store {path}: it is a directory")
            # Mode bits, not os.access: as root, access() says yes to a 0o444 file.
            writable = st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
            if not writable or not os.access(path, os.W_OK):
                raise ConfigurationError(
                    f"cannot open SQLite store {path}: the file is read-only; a workflow "
                    "store must be writable (check its permissions)"
                )

    def _make_engine(self) -> Engine:
        if self.path is None:
            engine = create_engine(
                "sqlite://",
                poolclass=StaticPool,
                connect_args={"check_same_thread": False},
            )
        else:
            path, timeout = self.path, self.busy_timeout

            def connect() -> sqlite3.Connection:
                # Once open, a connection never creates the file: a reader opened after
                # the file was deleted must fail, not start an empty store in its place.
                mode = "rw" if self._identity is not None else "rwc"
                target = f"file:{urllib.parse.quote(str(path))}?mode={mode}"
                return sqlite3.connect(target, uri=True, check_same_thread=False, timeout=timeout)

            engine = create_engine(
                "sqlite://",
                creator=connect,
                poolclass=NullPool,  # connections are pooled here, one per role
            )
        wal = self.path is not None
        busy_ms = int(self.busy_timeout * 1000)
        synchronous = self.synchronous

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
            # Autocommit at the driver: transactions are begun explicitly
            # (pysqlite's implicit transactions lost concurrent updates).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            try:
                cur.execute(f"PRAGMA busy_timeout = {busy_ms}")
                if wal and cur.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    _set_wal(cur)
                cur.execute(f"PRAGMA synchronous = {synchronous}")
                cur.execute("PRAGMA foreign_keys = ON")
            finally:
                cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine

    def _open(self) -> None:
        if self.path is not None:
            self._check_path(self.path)
        engine = self._make_engine()
        try:
            with engine.begin() as conn:
                migrate(conn, self.label)
                adopt_boot(conn)
            self._writer = engine.raw_connection()
            inline: sqlite3.Connection | None = None
            if self.path is None:
                inline = self._driver(self._writer)  # one connection; runs are serialised
            else:
                self._inline = engine.raw_connection()
                inline = self._driver(self._inline)
                # Never wait for another process's write lock, nor checkpoint the WAL,
                # on the trio thread (see Writer.run_inline).
                inline.execute("PRAGMA busy_timeout = 0")
                inline.execute("PRAGMA wal_autocheckpoint = 0")
            for writes in {self._driver(self._writer), inline}:
                # A write batch runs in a savepoint, whose journal keeps a copy of every
                # page the batch changes: past 64 KiB it went to a temporary file, a
                # write per page (a third of the batches' time, measured over workflows
                # started and parked). The journal lasts one transaction.
                writes.execute("PRAGMA temp_store = MEMORY")
            # With synchronous FULL/EXTRA a WAL commit syncs the disk: keep those commits
            # off the trio thread (small reads still run there).
            syncs = self.path is not None and self.synchronous in ("FULL", "EXTRA")
            if self.path is not None and not syncs:
                # The WAL those commits write is checkpointed beside them (Checkpointer).
                self._checkpoint_conn = engine.raw_connection()
            if self.path is not None:
                st = os.stat(self.path)
                self._identity = (st.st_dev, st.st_ino)
                self._lost = None
            self._thread = Writer(
                self._driver(self._writer),
                self.label,
                inline,
                inline_writes=not syncs,
                check=self.check_file,
                checkpoint_conn=(
                    None if self._checkpoint_conn is None else self._driver(self._checkpoint_conn)
                ),
            )
        except WfeError:
            self._close_checkpoint_conn()
            engine.dispose()
            raise
        except (sqlalchemy.exc.SQLAlchemyError, sqlite3.Error) as exc:
            self._close_checkpoint_conn()
            engine.dispose()
            cause = getattr(exc, "orig", None) or exc
            raise ConfigurationError(
                f"cannot open SQLite store {self.label}: {cause} "
                "(is it a SQLite database, and is its directory writable?)"
            ) from exc
        self._engine = engine

    def _close(self) -> None:
        if self._thread is not None:
            self._thread.stop()  # what is queued still commits
            self._thread = None
        with self._readers_lock:
            readers, self._readers, self._all_readers = self._all_readers, [], []
        for conn in readers:
            conn.close()
        if self._inline is not None:
            self._inline.close()
            self._inline = None
        self._close_checkpoint_conn()
        if self._writer is not None:
            if self._lost is not None:
                self._checkpoint_moved()
            self._writer.close()
            self._writer = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def _close_checkpoint_conn(self) -> None:
        if self._checkpoint_conn is not None:
            self._checkpoint_conn.close()
            self._checkpoint_conn = None

    def check_file(self) -> None:
        """Raise :class:`StoreLostError` when the path no longer names the file opened
        (deleted, or replaced by another): the open connections would go on writing into
        a file nobody can open again. One ``os.stat`` (~2 µs); run before each write
        batch commits and before each read, so an idle host's poller notices too."""
        if self._lost is not None:
            raise StoreLostError(str(self._lost))  # a fresh one: tracebacks pile up
        if self._identity is None or self.path is None:
            return
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            what = "was deleted"
        except OSError as exc:
            what = f"cannot be checked ({exc})"
        else:
            if (st.st_dev, st.st_ino) == self._identity:
                return
            what = (
                "was replaced by another file (opened as device/inode "
                f"{self._identity[0]}/{self._identity[1]}, now {st.st_dev}/{st.st_ino})"
            )
        self._lost = StoreLostError(
            f"SQLite store {self.label}: the database file {what} while the store was "
            "open; nothing more is written, rather than into a file no other process "
            "can open. Restore the file, or start again on the one now at that path"
        )
        raise StoreLostError(str(self._lost))

    def _checkpoint_moved(self) -> None:
        """The file was moved or deleted under the store: copy what its WAL holds into
        it (through the open descriptor) before closing. SQLite skips that checkpoint
        for a moved file, which would leave committed work in a ``-wal`` beside the
        replacement, where it belongs to neither file."""
        try:
            self._driver(self._writer).execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error:
            log.exception("SQLite store %s: checkpointing the moved file failed", self.label)

    # -- transactions ---------------------------------------------------------------

    def _driver(self, proxied: PoolProxiedConnection | None) -> sqlite3.Connection:
        if proxied is None:
            raise ProviderError(f"SQLite store {self.label} is not open: use `async with`")
        conn = proxied.driver_connection
        assert isinstance(conn, sqlite3.Connection)
        return conn

    def _transact(self, conn: sqlite3.Connection, begin: str, fn: Callable[..., T]) -> T:
        try:
            conn.execute(begin)
            try:
                result = fn(conn)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise ProviderError(f"SQLite store {self.label}: {exc}") from exc

    def _read_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._engine is None:
            raise ProviderError(f"SQLite store {self.label} is not open: use `async with`")
        with self._readers_lock:
            proxied = self._readers.pop() if self._readers else None
        if proxied is None:
            try:
                proxied = self._engine.raw_connection()
            except sqlalchemy.exc.SQLAlchemyError as exc:
                raise ProviderError(f"SQLite store {self.label}: {exc}") from exc
            with self._readers_lock:
                self._all_readers.append(proxied)
        try:
            return self._transact(self._driver(proxied), "BEGIN", fn)
        finally:
            with self._readers_lock:
                self._readers.append(proxied)

    def _queue(self, job: Job) -> None:
        """Collect ``job`` with the other writes of this trio tick; once the tasks of
        the tick have run they run as one batch, inline when the writer thread is idle,
        else in the writer thread."""
        if self._thread is None:
            raise ProviderError(f"SQLite store {self.label} is not open: use `async with`")
        if job.exclusive:
            self._thread.submit(*self._take_pending(), job)
            return
        self._pending.append(job)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._schedule_flush(job.token)

    def _schedule_flush(self, token: trio.lowlevel.TrioToken) -> None:
        """Have the pending writes flushed by the run's flusher (see :class:`_Flusher`)."""
        try:
            flusher = _FLUSHER.get()
        except LookupError:  # this run's first write
            flusher = _Flusher()
            _FLUSHER.set(flusher)
        if not flusher.add(self):
            token.run_sync_soon(self._flush_pending)  # the run is shutting down

    def _take_pending(self) -> list[Job]:
        jobs, self._pending = self._pending, []
        return jobs

    def _flush_pending(self) -> None:
        self._flush_scheduled = False
        jobs = self._take_pending()
        if not jobs:
            return
        thread = self._thread
        try:
            if thread is None:
                for job in jobs:
                    job.error = ProviderError(f"SQLite store {self.label} is closed")
                finish(jobs, None)
                return
            ran = thread.run_inline(jobs)
            if ran is Inline.RAN:
                finish(jobs, thread)
            elif ran is Inline.BUSY and thread.after_busy(
                trio.lowlevel.current_trio_token(), self._flush_after_thread
            ):
                # Held back, in order, until the thread is done: later writes join them.
                self._pending[:0] = jobs
                self._flush_scheduled = True
            else:
                thread.submit(*jobs)
        except ProviderError as exc:  # closed meanwhile: fail them, never strand them
            for job in jobs:
                if not job.finished:
                    job.result, job.error = None, exc
            finish([job for job in jobs if not job.finished], None)

    def _flush_after_thread(self) -> None:
        """The writer thread finished the work the held-back writes waited for."""
        self._schedule_flush(trio.lowlevel.current_trio_token())

    async def _submit(self, job: Job) -> Any:
        self._queue(job)
        # Not abandoned on cancellation: the caller learns how its write ended.
        await job.wait()
        if job.error is not None:
            raise job.error
        return job.result

    async def write(
        self,
        fn: Callable[[sqlite3.Connection], T],
        *,
        notify: Callable[[], None] | None = None,
    ) -> T:
        """Run ``fn(conn)`` inside a ``BEGIN IMMEDIATE`` transaction of the writer
        thread, possibly together with other callers' writes (each in its own
        savepoint: a failing ``fn`` is rolled back alone). Returns once the transaction
        holding it has committed; ``notify`` runs (on the trio thread) right then.

        Not abandoned on cancellation: the write finishes (commits or rolls back)
        before the caller sees the ``Cancelled``, so a write is all or nothing."""
        await trio.lowlevel.checkpoint_if_cancelled()
        result: T = await self._submit(Job(fn, notify=notify))
        return result

    def post(
        self,
        fn: Callable[[sqlite3.Connection], object],
        *,
        notify: Callable[[], None] | None = None,
    ) -> None:
        """Queue ``fn(conn)`` for the writer thread without waiting for its commit: for
        writes that are hints, whose loss in a crash the store's truth makes up for
        (queue items, acks, lease releases; see the providers). Writes are committed in
        the order they were submitted, so a later write of this process (a dequeue, an
        acquire) sees a posted one; ``notify`` runs on the trio thread once it has
        committed. A posted write that fails is logged."""
        self._queue(Job(fn, notify=notify, posted=True))

    async def read(self, fn: Callable[[sqlite3.Connection], T], *, small: bool = False) -> T:
        """Run ``fn(conn)`` in one read transaction (a consistent snapshot).

        ``small``: a read of a row or a few rows, run right away on the trio thread
        when the writer is idle (no thread hop); larger reads (histories, pages, scans)
        always run in a worker thread."""
        self.check_file()
        if small and self.path is not None and self._thread is not None:
            await trio.lowlevel.checkpoint()
            if self._thread is not None:
                done, found = self._thread.read_inline(fn)
                if done:
                    inline: T = found
                    return inline
        if self.path is None:
            # One connection: reads run in the writer thread, in a batch's savepoint.
            await trio.lowlevel.checkpoint_if_cancelled()
            result: T = await self._submit(Job(fn))
            return result
        return await trio.to_thread.run_sync(self._read_sync, fn, limiter=self._read_limiter)

    async def migrate(self) -> None:
        """Create missing tables (idempotent), alone in the writer thread."""

        def run(_conn: sqlite3.Connection) -> None:
            if self._engine is None:
                raise ProviderError(f"SQLite store {self.label} is not open: use `async with`")
            with self._engine.begin() as conn:
                migrate(conn, self.label)

        await self._submit(Job(run, exclusive=True))

    # -- in-process queue wake-ups ------------------------------------------------------

    def wakeup(self, kind: str) -> trio.Event:
        """The event the next enqueue of ``kind`` in this process sets. Take it before
        looking at the table, so an enqueue in between is not missed."""
        ev = self._wakeups.get(kind)
        if ev is None:
            ev = self._wakeups[kind] = trio.Event()
        return ev

    def enqueues(self, kind: str) -> int:
        """How many enqueues of ``kind`` this process has submitted (a generation)."""
        return self._enqueued.get(kind, 0)

    def enqueued(self, kind: str) -> None:
        """An enqueue of ``kind`` is being submitted to the writer."""
        self._enqueued[kind] = self._enqueued.get(kind, 0) + 1

    def found_empty(self, kind: str, generation: int, next_visible: int | None) -> None:
        """A take begun at ``generation`` left ``kind`` with no visible item; the next
        becomes visible at ``next_visible`` (wall µs; ``None``: there is none)."""
        self._empty_at[kind] = (generation, next_visible)

    def known_empty(self, kind: str, now_us: int) -> int | None:
        """``0``, or when the next item shows (wall µs), if ``kind`` is known to hold no
        visible item: found so after this process's last enqueue of it. ``None`` when
        it may hold one. A dequeue then waits (and polls for other processes) without
        taking the write lock for nothing."""
        found = self._empty_at.get(kind)
        if found is None or found[0] != self._enqueued.get(kind, 0):
            return None
        if found[1] is None:
            return 0
        return found[1] if found[1] > now_us else None

    def notify(self, kind: str) -> None:
        ev = self._wakeups.pop(kind, None)
        if ev is not None:
            ev.set()


class _Flusher:
    """The system task of one trio run that runs the pending writes of every database
    once the tasks of the tick that wrote them have run, in the order of each
    database's first write of the tick (so a write posted to one database commits
    before a later one to another database on the same file sees the file).

    Rescheduling the parked task costs a list append, where a ``run_sync_soon`` from
    the trio thread itself costs a wake-up-socket write, a poll and a read per batch."""

    def __init__(self) -> None:
        self._due: list[Database] = []
        self._task: trio.lowlevel.Task | None = None
        self._parked = False

    def add(self, db: Database) -> bool:
        """Flush ``db`` next; ``False`` when no flusher task can be started (the run is
        shutting down)."""
        self._due.append(db)
        if self._task is None:
            try:
                self._task = trio.lowlevel.spawn_system_task(self._run, name="wfe-sqlite-flush")
            except RuntimeError:
                self._due.remove(db)
                return False
            self._parked = False
        elif self._parked:
            self._parked = False
            trio.lowlevel.reschedule(self._task)
        return True

    async def _run(self) -> None:
        me = trio.lowlevel.current_task()
        try:
            while True:
                due, self._due = self._due, []
                for db in due:
                    db._flush_pending()
                if self._due:
                    # Written by a completion callback of that flush: next tick.
                    await trio.lowlevel.cancel_shielded_checkpoint()
                    continue
                self._parked = True
                await trio.lowlevel.wait_task_rescheduled(self._abort)
        finally:
            if self._task is me:
                self._task = None
                self._parked = False

    def _abort(self, _raise_cancel: Any) -> trio.lowlevel.Abort:
        # The run is ending (system tasks are cancelled last). Parked means nothing is
        # due; a later write of this run starts another flusher, or calls back.
        self._task = None
        self._parked = False
        return trio.lowlevel.Abort.SUCCEEDED


_FLUSHER: trio.lowlevel.RunVar[_Flusher] = trio.lowlevel.RunVar("wfe_sqlite_flusher")


def _set_wal(cur: sqlite3.Cursor) -> None:
    """Switch a new file to WAL. Two processes opening one new file at once can see
    "database is locked" here even with a busy timeout (the switch needs an exclusive
    lock the timeout does not cover), so retry briefly."""
    for attempt in range(50):
        try:
            cur.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 49:
                raise
            time.sleep(0.02 * (attempt + 1))
