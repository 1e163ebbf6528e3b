"""Work queues on Valkey/Redis streams with one consumer group, at-least-once.

Per kind, under the provider's prefix: the stream ``queue:<kind>`` (consumer group
``wfe``) and the hash ``queue:<kind>:waiting`` mapping each id waiting for delivery to its
stream entry, which suppresses duplicates of an id already queued. A dequeue is one Lua
script: first reclaim an entry whose consumer has not acked it within the visibility
timeout (``XAUTOCLAIM``: its host died), else read a new one (``XREADGROUP``). When there
is none it waits with a non-consuming ``XREAD BLOCK`` of at most one second, in a loop,
so a cancelled wait (a thread cannot be interrupted) takes nothing with it. An ack is
``XACK`` + ``XDEL`` of the entry, so the stream holds only waiting and in-flight entries;
``MAXLEN ~`` bounds it besides.

A receipt names the entry, the consumer and the delivery count: acking a redelivered
item's old receipt changes nothing.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable, Sequence
from typing import Any

import trio

from wfe.core import ConfigurationError, ProviderError
from wfe.core.protocols import QueueItem, QueueKind

from ._base import ValkeyProvider
from ._connection import is_connection_error, log

GROUP = "wfe"

_ENSURE = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
end
"""

_ENQUEUE = (
    _ENSURE
    + """
local added = 0
for i = 3, #ARGV do
  local id = ARGV[i]
  local entry = redis.call('HGET', KEYS[2], id)
  if not (entry and #redis.call('XRANGE', KEYS[1], entry, entry) > 0) then
    entry = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'id', id)
    redis.call('HSET', KEYS[2], id, entry)
    added = added + 1
  end
end
return added
"""
)

_TAKE = (
    _ENSURE
    + """
local cursor = '0-0'
for _ = 1, 100 do
  local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], cursor, 'COUNT', 1)
  cursor = r[1]
  local e = r[2][1]
  if e and e[2] then
    local p = redis.call('XPENDING', KEYS[1], ARGV[1], e[1], e[1], 1)
    return {'item', e[1], e[2][2], tostring(p[1][4])}
  end
  if cursor == '0-0' then break end
end
local r = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', 1, 'STREAMS', KEYS[1], '>')
if r then
  local e = r[1][2][1]
  local id = e[2][2]
  if redis.call('HGET', KEYS[2], id) == e[1] then
    redis.call('HDEL', KEYS[2], id)
  end
  return {'item', e[1], id, '1'}
end
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
return {'none', newest and newest[1] or '0-0'}
"""
)

_ACK = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)[1]
if p and p[2] == ARGV[3] and tostring(p[4]) == ARGV[4] then
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
  redis.call('XDEL', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

_LEAVE = """
for _, stream in ipairs(KEYS) do
  if redis.call('EXISTS', stream) == 1 then
    local p = redis.call('XPENDING', stream, ARGV[1], '-', '+', 1, ARGV[2])
    if #p == 0 then
      redis.call('XGROUP', 'DELCONSUMER', stream, ARGV[1], ARGV[2])
    end
  end
end
return 1
"""


class ValkeyQueueProvider(ValkeyProvider):
    """A :class:`~wfe.core.protocols.QueueProvider` on Valkey or Redis streams.

    ``ValkeyQueueProvider("valkey://host:6379/0?prefix=app:")``; keywords as for
    :class:`~wfe.valkey.ValkeyLockProvider` plus ``visibility_timeout`` (seconds an
    un-acked item waits before another consumer may take it, default 30), ``block``
    (the longest server-side wait of one blocking read, at most 1 s) and
    ``max_length`` (the approximate cap of each stream). It also carries the cross-host
    change feed (see :mod:`wfe.valkey`).

    While the server cannot be reached, ``dequeue`` waits (returning ``None`` at its
    timeout) and ``enqueue`` logs a warning and drops the hint: the store still holds
    the work and the host's poller queues it again once the server is back.
    """

    def __init__(
        self,
        url: str = "valkey://127.0.0.1:6379/0",
        *,
        visibility_timeout: float = 30.0,
        block: float = 1.0,
        max_length: int = 1_000_000,
        **options: Any,
    ) -> None:
        super().__init__(url, **options)
        label = self.url
        if not _positive_number(visibility_timeout):
            raise ConfigurationError(
                f"visibility_timeout for {label} must be a positive number of seconds, "
                f"got {visibility_timeout!r}"
            )
        if not _positive_number(block) or block > 1.0:
            raise ConfigurationError(
                f"block for {label} must be a number of seconds in (0, 1], got {block!r}"
            )
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
            raise ConfigurationError(
                f"max_length for {label} must be a positive integer, got {max_length!r}"
            )
        self.visibility_timeout = float(visibility_timeout)
        self._block = float(block)
        self._max_length = max_length
        self.consumer = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"

    async def _opened(self) -> None:
        self._enqueue = self._server.register_script(_ENQUEUE)
        self._take = self._server.register_script(_TAKE)
        self._ack = self._server.register_script(_ACK)
        self._leave = self._server.register_script(_LEAVE)

    async def __aexit__(self, *exc_info: Any) -> None:
        # Forget this consumer in each group unless it still holds un-acked entries
        # (deleting it then would orphan them; other consumers reclaim them first).
        if self._depth > 1:
            await super().__aexit__(*exc_info)
            return
        streams = [self._stream(kind) for kind in QueueKind]
        try:
            with trio.CancelScope(shield=True):
                await self._server.run(
                    lambda _c: self._leave(keys=streams, args=[GROUP, self.consumer]),
                    "leaving the consumer group",
                )
        except ProviderError as exc:
            log.info("%s", exc)
        finally:
            await super().__aexit__(*exc_info)

    def _stream(self, kind: QueueKind) -> str:
        return self.key("queue", QueueKind(kind).value)

    async def enqueue(self, kind: QueueKind, item_id: str) -> None:
        """Queue ``item_id``; an id already waiting in ``kind`` is not queued twice."""
        await self.enqueue_many(kind, [item_id])

    async def enqueue_many(self, kind: QueueKind, item_ids: Sequence[str]) -> None:
        """Queue several ids of one kind in one round trip."""
        ids = [_check_id(i) for i in item_ids]
        if not ids:
            await trio.lowlevel.checkpoint()
            return
        stream = self._stream(kind)
        keys = [stream, stream + ":waiting"]
        try:
            await self._server.run(
                lambda _c: self._enqueue(keys=keys, args=[GROUP, self._max_length, *ids]),
                f"queueing {len(ids)} {kind.value} item(s)",
            )
        except ProviderError as exc:
            if exc.__cause__ is None or not is_connection_error(exc.__cause__):
                raise
            # Logged once per outage by the server; the store's poller finds the work.
            log.debug("%s; the hint is dropped", exc)

    async def dequeue(self, kind: QueueKind, timeout: float) -> QueueItem | None:
        """The next item of ``kind``: a reclaimed one first, else a new one; waits up to
        ``timeout`` seconds, then ``None``. Cancelling the wait loses no item."""
        kind = QueueKind(kind)
        stream = self._stream(kind)
        keys = [stream, stream + ":waiting"]
        args: list[str | int] = [GROUP, self.consumer, int(self.visibility_timeout * 1000)]
        deadline = trio.current_time() + max(float(timeout), 0.0)
        backoff = 0.05
        while True:
            try:
                reply: Any = await self._server.run(
                    lambda _c: self._take(keys=keys, args=args), f"taking a {kind.value} item"
                )
            except ProviderError as exc:
                if exc.__cause__ is None or not is_connection_error(exc.__cause__):
                    raise
                log.debug("%s; retrying", exc)
                remaining = deadline - trio.current_time()
                if remaining <= 0:
                    return None
                await trio.sleep(min(backoff, remaining))
                backoff = min(backoff * 2, 1.0)
                continue
            backoff = 0.05
            if reply[0] == b"item":
                entry, item_id, count = (x.decode() for x in reply[1:4])
                item = QueueItem(
                    kind=kind, item_id=item_id, receipt=f"{entry} {self.consumer} {count}"
                )
                try:
                    await trio.lowlevel.checkpoint_if_cancelled()
                except trio.Cancelled:
                    with trio.CancelScope(shield=True):
                        await self._give_back(stream, entry)
                    raise
                return item
            remaining = deadline - trio.current_time()
            if remaining <= 0:
                return None
            newest = reply[1].decode()
            block_ms = max(1, int(min(remaining, self._block) * 1000))
            try:
                # Non-consuming: abandoning this thread on cancellation takes no item.
                await self._server.run(
                    _blocking_read(stream, newest, block_ms),
                    f"waiting for a {kind.value} item",
                    abandon=True,
                )
            except ProviderError as exc:
                if exc.__cause__ is None or not is_connection_error(exc.__cause__):
                    raise
                # The next take reports (and backs off from) the failure.

    async def _give_back(self, stream: str, entry: str) -> None:
        """Make an item taken by a cancelled dequeue reclaimable at once."""
        idle = int(self.visibility_timeout * 1000) + 1
        try:
            await self._server.run(
                lambda c: c.xclaim(
                    stream, GROUP, self.consumer, 0, [entry], idle=idle, justid=True
                ),
                "handing back a cancelled dequeue's item",
            )
        except ProviderError as exc:
            log.info("%s (it is reclaimed after the visibility timeout)", exc)

    async def ack(self, item: QueueItem) -> None:
        """Done with ``item``: it is not delivered again. Harmless when repeated, or when
        the item was redelivered since (the old receipt no longer matches)."""
        parts = item.receipt.split(" ")
        if len(parts) != 3:
            await trio.lowlevel.checkpoint()
            return
        entry, consumer, count = parts
        stream = self._stream(item.kind)
        await self._server.run(
            lambda _c: self._ack(keys=[stream], args=[GROUP, entry, consumer, count]),
            f"acking a {item.kind.value} item",
        )


def _blocking_read(stream: str, since: str, block_ms: int) -> Callable[[Any], object]:
    def read(client: Any) -> object:
        return client.xread({stream: since}, count=1, block=block_ms)

    return read


def _positive_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _check_id(item_id: object) -> str:
    if not isinstance(item_id, str) or not item_id:
        raise ConfigurationError(f"a queue item id must be a non-empty string, got {item_id!r}")
    return item_id
