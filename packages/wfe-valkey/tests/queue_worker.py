"""A consumer process for the redelivery test (a script, not collected).

    python queue_worker.py URL PREFIX KIND OUT

Takes one item of KIND from the queue, writes ``taken ID`` to OUT and then waits to be
killed, never acking it.
"""

# ruff: noqa: ASYNC230  (one small file write, then it waits to be killed)
from __future__ import annotations

import sys

import trio

from wfe.core.protocols import QueueKind
from wfe.valkey import ValkeyQueueProvider


async def main(url: str, prefix: str, kind: str, out: str) -> None:
    async with ValkeyQueueProvider(url, prefix=prefix, visibility_timeout=0.5) as queues:
        item = await queues.dequeue(QueueKind(kind), 30.0)
        with open(out, "w") as f:
            f.write(f"taken {item.item_id if item else '-'}\n")
        await trio.sleep_forever()


if __name__ == "__main__":
    trio.run(main, *sys.argv[1:5])
