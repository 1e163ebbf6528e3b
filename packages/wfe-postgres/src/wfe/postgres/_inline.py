"""Run blocking psycopg code on the trio thread, waiting for the socket in trio.

psycopg does all its network work in generators that say what they wait for (read,
write) and leave the waiting to ``Connection.wait``. :class:`InlineConnection` overrides
that one method: inside :func:`run_inline` the code runs in a greenlet, and each wait
switches back to the trio task, which awaits the socket with
``trio.lowlevel.wait_readable`` / ``wait_writable`` and switches in again. So provider
code keeps psycopg's whole synchronous API (pipelines, transactions, adaptation) while
other trio tasks run during every round trip, and no call pays a thread hop (130-190 µs
of wall time and as much CPU per call: TECH-NOTES.md; ~70 µs less per statement measured
here). Outside :func:`run_inline` (connecting in a worker thread, the LISTEN setup) the
connection waits as usual.
"""

from __future__ import annotations

import contextvars
import select
from collections.abc import Callable
from typing import Any, TypeVar

import greenlet  # type: ignore[import-untyped]  # greenlet ships no type information
import psycopg
import trio
from psycopg import waiting
from psycopg.abc import PQGen

T = TypeVar("T")
RV = TypeVar("RV")


class _Driven(greenlet.greenlet):  # type: ignore[misc]  # an untyped base
    """The greenlet of one :func:`run_inline` call (so waits know to switch out)."""


class InlineConnection(psycopg.Connection[Any]):
    """A psycopg connection whose waits, inside :func:`run_inline`, are trio awaits."""

    def wait(self, gen: PQGen[RV], interval: float = 0.1, timeout: float | None = None) -> RV:
        current = greenlet.getcurrent()
        if not isinstance(current, _Driven) or timeout is not None:
            return super().wait(gen, interval, timeout)
        fileno = self.pgconn.socket
        parent = current.parent
        assert parent is not None
        try:
            state = next(gen)
            while True:
                state = gen.send(parent.switch(fileno, state))
        except StopIteration as stop:
            result: RV = stop.value
            return result


async def run_inline(fn: Callable[[InlineConnection], T], conn: InlineConnection) -> T:
    """``fn(conn)`` on this thread; every wait of ``conn`` inside it is a trio await.

    The caller shields this from cancellation (a statement cannot be abandoned half-way);
    should the await fail anyway, the connection is closed, being mid-protocol (the
    suspended greenlet is dropped: greenlet ends it with ``GreenletExit``)."""
    child = _Driven(fn)
    child.gr_context = contextvars.copy_context()
    request = child.switch(conn)
    while not child.dead:
        fileno, state = request
        try:
            ready = await _ready(fileno, state)
        except BaseException:
            conn.close()
            raise
        request = child.switch(ready)
    result: T = request
    return result


async def _ready(fileno: int, state: int) -> int:
    """Wait until ``fileno`` is ready as ``state`` asks; the ``READY_*`` flags."""
    mask = (select.POLLIN if state & waiting.WAIT_R else 0) | (
        select.POLLOUT if state & waiting.WAIT_W else 0
    )
    poller = select.poll()
    poller.register(fileno, mask)
    events = poller.poll(0)
    if events:
        got = events[0][1]
        ready = (
            waiting.READY_R if got & (select.POLLIN | select.POLLERR | select.POLLHUP) else 0
        ) | (waiting.READY_W if got & select.POLLOUT else 0)
        if ready:
            return ready
    if state == waiting.WAIT_R:
        await trio.lowlevel.wait_readable(fileno)
        return waiting.READY_R
    if state == waiting.WAIT_W:
        await trio.lowlevel.wait_writable(fileno)
        return waiting.READY_W
    return await _either(fileno)


async def _either(fileno: int) -> int:
    # Both directions: in pipeline mode the send buffer may be full while results wait.
    ready = 0

    async def wait(fn: Callable[[int], Any], flag: int, scope: trio.CancelScope) -> None:
        nonlocal ready
        await fn(fileno)
        ready |= flag
        scope.cancel()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait, trio.lowlevel.wait_readable, waiting.READY_R, nursery.cancel_scope)
        nursery.start_soon(wait, trio.lowlevel.wait_writable, waiting.READY_W, nursery.cancel_scope)
    return ready
