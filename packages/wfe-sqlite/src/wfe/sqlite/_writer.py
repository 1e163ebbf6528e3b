"""Group commit: one writer thread commits many callers' writes per transaction.

Every write of a :class:`~wfe.sqlite._database.Database` is a *job* (a function of the
DBAPI connection) handed to its one writer thread. The thread takes every job waiting
when it wakes and runs them, in order of submission, in ONE ``BEGIN IMMEDIATE``
transaction: a job that fails (a stale fencing token, a constraint) is rolled back
(the batch runs again, each job in a savepoint of its own) and only its caller sees
the error; the others commit. Each caller is woken only after the ``COMMIT`` that holds its
work returned: a batch the writer thread ran with one wake-up per trio run per batch
(``run_sync_soon``), not one thread hop per job or per statement; a batch run inline on
the trio thread by rescheduling the parked callers directly.

Why: a SQLite commit costs ~30-60 µs in WAL and a thread hop ~140-370 µs
(TECH-NOTES.md); with one write limiter and one transaction per call, 200 concurrent
workflows queued ~4.6 ms per write for 0.1 ms of SQLite work. Batching turns N commits
and N hops into one of each.

Durability is unchanged: a job's caller returns only after its batch committed with the
database's ``synchronous`` setting; a crash before that loses the whole batch, and no
caller was told it was stored.
"""

from __future__ import annotations

import contextlib
import contextvars
import enum
import logging
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

import trio

from wfe.core import ProviderError, StoreLostError

log = logging.getLogger("wfe.sqlite")

Work = Callable[[sqlite3.Connection], Any]


class Job:
    """One caller's write (or, for ``:memory:``, read) and its outcome."""

    __slots__ = (
        "context",
        "error",
        "exclusive",
        "finished",
        "fn",
        "notify",
        "posted",
        "result",
        "task",
        "token",
    )

    def __init__(
        self,
        fn: Work,
        *,
        exclusive: bool = False,
        notify: Callable[[], None] | None = None,
        posted: bool = False,
    ) -> None:
        self.fn = fn
        # Nobody waits for a posted job: its failure is logged (see Database.post).
        self.posted = posted
        # An exclusive job runs alone, outside any transaction (schema migrations).
        self.exclusive = exclusive
        self.notify = notify
        self.result: Any = None
        self.error: BaseException | None = None
        self.token = trio.lowlevel.current_trio_token()
        # Runs in the caller's context, as trio.to_thread would (the codec reads a
        # context variable: wfe.core.serialization.opaque_types).
        self.context = contextvars.copy_context()
        # The caller parked until the job ends (see wait), and whether it has ended.
        # Only ever touched on the trio thread: the writer thread hands finished jobs
        # back through run_sync_soon.
        self.task: trio.lowlevel.Task | None = None
        self.finished = False

    async def wait(self) -> None:
        """Park the calling task until the job has ended (committed or failed).

        Not a cancellation point: a cancelled caller stays parked until its write has
        ended, and sees the ``Cancelled`` at its next checkpoint (the same as a
        shielded wait, without a cancel scope and an event per write)."""
        if self.finished:
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        self.task = trio.lowlevel.current_task()
        await trio.lowlevel.wait_task_rescheduled(_refuse_abort)


def _refuse_abort(_raise_cancel: Any) -> trio.lowlevel.Abort:
    return trio.lowlevel.Abort.FAILED


class Inline(enum.Enum):
    """How :meth:`Writer.run_inline` went."""

    RAN = "ran"
    BUSY = "busy"  # the writer thread is at work: nothing ran
    REFUSED = "refused"  # no inline writes here, or another process holds the lock


class Writer:
    """The writer thread of one database; see module docs."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        label: str,
        inline_conn: sqlite3.Connection | None = None,
        *,
        inline_writes: bool = True,
        check: Callable[[], None] | None = None,
        checkpoint_conn: sqlite3.Connection | None = None,
    ) -> None:
        self._conn = conn
        # Raises StoreLostError when the file is no longer the one opened: run before
        # each COMMIT, so nothing is committed into a deleted (unlinked) file.
        self._check = check
        self._posted_failures = 0
        self._label = label
        self._jobs: list[Job] = []
        self._cond = threading.Condition()
        self._stopping = False
        # Held while a batch runs, in the thread or inline (see run_inline).
        self._busy = threading.Lock()
        self._inline = inline_conn
        # Off when a commit syncs the disk (synchronous FULL/EXTRA): no fsync on the loop.
        self._inline_writes = inline_writes
        self._inline_commits = 0
        # Called back (on their trio run) once the thread has no work left: see after_busy.
        self._waiters: list[tuple[trio.lowlevel.TrioToken, Callable[[], None]]] = []
        self._thread = threading.Thread(target=self._serve, name=f"wfe-sqlite-writer {label}")
        self._thread.daemon = True
        self._thread.start()
        # Checkpoints the WAL the inline commits write, beside them (see Checkpointer).
        self._checkpointer = (
            None if checkpoint_conn is None else Checkpointer(checkpoint_conn, label, self)
        )

    def submit(self, *jobs: Job) -> None:
        with self._cond:
            if self._stopping:
                raise ProviderError(f"SQLite store {self._label} is closed")
            was_idle = not self._jobs
            self._jobs.extend(jobs)
            if was_idle:
                self._cond.notify()

    def run_inline(self, jobs: list[Job]) -> Inline:
        """Run ``jobs`` as one batch on the calling (trio) thread when the writer thread
        is idle with nothing queued: no thread hop and no contention for the GIL.
        Nothing runs when the thread is at work (``BUSY``; see :meth:`after_busy`), nor
        when another process holds the write lock (``REFUSED``): the inline connection
        never waits for it (its busy timeout is 0), so the trio loop never blocks on a
        lock; the caller then submits the jobs.

        The inline connection never checkpoints the WAL itself (that is file I/O); every
        ``_CHECKPOINT_EVERY`` inline commits the :class:`Checkpointer` is asked to (else
        the writer thread)."""
        conn = self._inline
        if conn is None or not self._inline_writes or self._stopping:
            return Inline.REFUSED
        if self._jobs or not self._busy.acquire(blocking=False):
            return Inline.BUSY
        try:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:
                return Inline.REFUSED  # locked by another process: the thread waits for it
            try:
                self._run_batch(jobs, conn, begun=True)
            except BaseException as exc:  # never into trio's callback: fail the jobs
                log.exception("SQLite store %s: an inline write batch failed", self._label)
                self._reset(conn)
                for job in jobs:
                    if job.error is None:
                        job.result = None
                        job.error = ProviderError(f"SQLite store {self._label}: {exc!r}")
        finally:
            self._busy.release()
        self._inline_commits += 1
        if self._inline_commits % _CHECKPOINT_EVERY == 0:
            checkpoint = Job(_checkpoint_wal, exclusive=True, posted=True)
            if self._checkpointer is not None:
                self._checkpointer.ask(checkpoint)
            else:
                self.submit(checkpoint)
        return Inline.RAN

    def after_busy(self, token: trio.lowlevel.TrioToken, fn: Callable[[], None]) -> bool:
        """Have ``fn`` run on ``token``'s trio run once the thread has finished the
        work it has; ``False`` (nothing registered) when it has none left, or is
        stopping: the caller goes on at once.

        Writes that found the thread at work (a WAL checkpoint takes ~5-10 ms with its
        file sync) wait for it this way and then run inline, together, instead of each
        batch queueing behind it in the thread: that convoy sent ~70-100 batches per
        checkpoint through the thread, each a hop back to the trio thread."""
        with self._cond:
            if self._stopping or not (self._jobs or self._busy.locked()):
                return False
            self._waiters.append((token, fn))
            return True

    def read_inline(self, fn: Work) -> tuple[bool, Any]:
        """Run the read ``fn`` in a snapshot of the committed state on the calling (trio)
        thread, when the writer is idle with nothing queued: ``(True, result)``; else
        (or when SQLite reports a lock, rare for a WAL read) ``(False, None)`` and the
        caller reads through a worker thread. For small reads only (a row, a few rows):
        the trio loop runs them."""
        conn = self._inline
        if conn is None or self._jobs or self._stopping:
            return False, None
        if not self._busy.acquire(blocking=False):
            return False, None
        try:
            try:
                conn.execute("BEGIN")
                try:
                    return True, fn(conn)
                finally:
                    if conn.in_transaction:
                        conn.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    return False, None
                raise self._wrap(exc) from exc
            except sqlite3.Error as exc:
                raise self._wrap(exc) from exc
        finally:
            self._busy.release()

    def stop(self) -> None:
        """Run what is queued, then end the thread (blocking; call from a thread)."""
        if self._checkpointer is not None:
            self._checkpointer.stop()
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join()

    # -- the thread --------------------------------------------------------------------

    def _serve(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._stopping:
                    self._cond.wait()
                if not self._jobs:
                    waiters, self._waiters = self._waiters, []
                    break
                batch, self._jobs = self._jobs, []
            with self._busy:
                self._run_jobs(batch)
            _wake(batch, self)
            # _busy is free: whoever registers from here on sees it (see after_busy).
            with self._cond:
                if self._jobs:
                    continue
                waiters, self._waiters = self._waiters, []
            _call_back(waiters)
        _call_back(waiters)  # stopping: they find it so, and fail their writes

    def _run_jobs(self, batch: list[Job]) -> None:
        try:
            start = 0
            for i, job in enumerate(batch):
                if job.exclusive:
                    self._run_batch(batch[start:i])
                    self._run_exclusive(job)
                    start = i + 1
            self._run_batch(batch[start:])
        except BaseException as exc:  # never let the thread die with callers waiting
            log.exception("SQLite store %s: a write batch failed", self._label)
            self._reset()
            for job in batch:
                if job.error is None:
                    job.result = None
                    job.error = ProviderError(f"SQLite store {self._label}: {exc!r}")

    def _run_exclusive(self, job: Job) -> None:
        try:
            job.result = job.context.run(job.fn, self._conn)
        except BaseException as exc:
            job.error = exc

    def _run_batch(
        self, jobs: list[Job], conn: sqlite3.Connection | None = None, *, begun: bool = False
    ) -> None:
        """Run ``jobs`` in one transaction; re-run the survivors in a fresh transaction
        if SQLite rolled the whole transaction back (an I/O error). ``begun``: the
        transaction is open already.

        The jobs run in one savepoint of the whole batch, not in one savepoint each:
        whenever a savepoint opens, FTS5 writes the terms it holds out as a segment of
        their own, so a savepoint per job cost a segment (and a merge later) per search
        document. Should a job fail, the batch is rolled back to that savepoint and run
        again in the same transaction with a savepoint per job, so that only the
        failing job's caller sees an error (a job is a pure function of the
        connection's state)."""
        conn = self._conn if conn is None else conn
        careful = False  # a savepoint per job
        while jobs:
            try:
                if not begun:
                    conn.execute("BEGIN IMMEDIATE")
                begun = False
            except sqlite3.Error as exc:
                self._fail(jobs, exc)
                return
            single = len(jobs) == 1  # no savepoint needed: a failure rolls everything back
            each = careful and not single  # a savepoint per job
            whole = not careful and not single  # one savepoint for the batch
            if whole:
                conn.execute("SAVEPOINT batch")
            lost = again = False
            for job in jobs:
                try:
                    if each:
                        conn.execute("SAVEPOINT job")
                    job.result = job.context.run(job.fn, conn)
                    if each:
                        conn.execute("RELEASE job")
                except BaseException as exc:
                    job.error = self._wrap(exc)
                    if not conn.in_transaction:
                        lost = True
                        break
                    if whole:
                        conn.execute("ROLLBACK TO batch")
                        conn.execute("RELEASE batch")
                        for j in jobs:
                            j.result = j.error = None
                        careful = again = True
                        break
                    if each:
                        conn.execute("ROLLBACK TO job")
                        conn.execute("RELEASE job")
            if again:
                begun = True  # the transaction is still open
                continue
            if lost:
                # Everything this transaction did is gone: run the jobs not yet failed
                # again (a job is a pure function of the connection's state).
                jobs = [j for j in jobs if j.error is None]
                for j in jobs:
                    j.result = None
                continue
            if whole:
                conn.execute("RELEASE batch")
            if single and jobs[0].error is not None:
                conn.execute("ROLLBACK")
                return
            if self._check is not None:
                try:
                    self._check()
                except StoreLostError as exc:
                    conn.execute("ROLLBACK")
                    for job in jobs:
                        if job.error is None:
                            job.result = None
                            job.error = exc
                    return
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                self._fail([j for j in jobs if j.error is None], exc)
            return

    def _reset(self, conn: sqlite3.Connection | None = None) -> None:
        conn = self._conn if conn is None else conn
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error:
            log.exception("SQLite store %s: rolling back a failed batch failed", self._label)

    def _wrap(self, exc: BaseException) -> BaseException:
        if isinstance(exc, sqlite3.Error):
            wrapped = ProviderError(f"SQLite store {self._label}: {exc}")
            wrapped.__cause__ = exc
            return wrapped
        return exc

    def _fail(self, jobs: list[Job], exc: sqlite3.Error) -> None:
        for job in jobs:
            job.result = None
            job.error = self._wrap(exc)


_CHECKPOINT_EVERY = 200


class Checkpointer:
    """Checkpoints a WAL database on a connection and thread of its own, while commits
    go on: a PASSIVE checkpoint neither waits for writers nor makes them wait. Run in
    the writer thread, it held every write back for its whole file I/O (~5-10 ms with
    its syncs) each ``_CHECKPOINT_EVERY`` inline commits: a pause felt by every caller
    of a write then (a sequential workflow's every step).

    A checkpoint beside commits leaves the frames committed meanwhile, and SQLite only
    starts a WAL over when a write begins with all of it copied: under a steady stream
    of writes the WAL would grow for ever. So the writer thread then checkpoints those
    few frames, writes held back: ~1 ms instead of the whole checkpoint (measured here:
    7 frames 0.8 ms, 858 frames 5.8 ms).

    Requests while one runs are folded into one more run after it."""

    def __init__(self, conn: sqlite3.Connection, label: str, writer: Writer) -> None:
        self._conn = conn
        self._label = label
        self._writer = writer
        self._cond = threading.Condition()
        # The writer thread's catch-up checkpoint, made on the trio thread that asked.
        self._catch_up: Job | None = None
        self._stopping = False
        self._thread = threading.Thread(
            target=self._serve, name=f"wfe-sqlite-checkpointer {label}", daemon=True
        )
        self._thread.start()

    def ask(self, catch_up: Job) -> None:
        """Have the WAL checkpointed soon, then ``catch_up`` (a checkpoint job) run by
        the writer thread; returns at once."""
        with self._cond:
            self._catch_up = catch_up
            self._cond.notify()

    def stop(self) -> None:
        """End the thread once a checkpoint running now is done (blocking; from a
        thread). One only asked for is dropped: closing the last connection to the
        database checkpoints the whole WAL anyway."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join()

    def _serve(self) -> None:
        while True:
            with self._cond:
                while self._catch_up is None and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                catch_up, self._catch_up = self._catch_up, None
            assert catch_up is not None  # asked for, and not stopping
            try:
                _checkpoint_wal(self._conn)
            except sqlite3.Error as exc:
                # The writer thread's checkpoint then does it all.
                log.warning("SQLite store %s: checkpointing the WAL failed: %s", self._label, exc)
            # Closing, it is refused: closing the last connection checkpoints the WAL.
            with contextlib.suppress(ProviderError):
                self._writer.submit(catch_up)


def _checkpoint_wal(conn: sqlite3.Connection) -> None:
    """Move committed WAL pages into the database file (as SQLite's auto-checkpoint
    would), so a WAL written by inline commits stays bounded."""
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def _call_back(waiters: list[tuple[trio.lowlevel.TrioToken, Callable[[], None]]]) -> None:
    for token, fn in waiters:
        try:
            token.run_sync_soon(fn)
        except trio.RunFinishedError:
            log.debug("a trio run ended before its SQLite writes could run")


def _wake(batch: list[Job], writer: Writer) -> None:
    """Wake every caller of a committed batch: one callback per trio run."""
    by_token: dict[Any, list[Job]] = {}
    for job in batch:
        by_token.setdefault(job.token, []).append(job)
    for token, jobs in by_token.items():
        try:
            token.run_sync_soon(_finish, jobs, writer)
        except trio.RunFinishedError:
            log.debug("a trio run ended before its SQLite writes were confirmed")


def finish(jobs: list[Job], writer: Writer | None) -> None:
    """Wake the callers of jobs run inline (on their trio thread)."""
    _finish(jobs, writer)


def _finish(jobs: list[Job], writer: Writer | None) -> None:
    for job in jobs:
        job.finished = True
        if job.notify is not None and job.error is None:
            try:
                job.notify()
            except Exception:  # a wake-up hint: never keep the callers parked
                log.exception("a SQLite write's notification failed")
        if job.posted:
            _posted_outcome(writer, job.error)
        task = job.task
        if task is not None:
            job.task = None
            trio.lowlevel.reschedule(task)


def _posted_outcome(writer: Writer | None, error: BaseException | None) -> None:
    """Log failing posted writes once per streak (a full disk fails every one of them
    for as long as it lasts), and when they work again."""
    if writer is None:
        if error is not None:
            log.warning("a posted SQLite write failed: %s", error)
        return
    if error is None:
        if writer._posted_failures:
            log.warning(
                "posted SQLite writes to %s work again after %d failure(s)",
                writer._label,
                writer._posted_failures,
            )
            writer._posted_failures = 0
        return
    writer._posted_failures += 1
    if writer._posted_failures == 1:
        log.warning(
            "a posted SQLite write failed: %s (further failures are counted, logged when "
            "they stop)",
            error,
        )
