"""Run under libfaketime by test_lease_clock.py: holds a lease on a SQLite file while the
test steps this process's wall clock, and prints what the lock provider did.

Protocol (one line each way): prints ``acquired``; on ``renew`` renews and prints the
result; on ``expire`` waits (monotonic time) past the lease without renewing, then has a
second provider try to take it and prints whether it could."""

from __future__ import annotations

import sys
from datetime import timedelta

import trio

from wfe.sqlite import SqliteLockProvider

TTL = timedelta(seconds=1)


async def main(url: str) -> None:
    async with SqliteLockProvider(url) as mine, SqliteLockProvider(url) as other:
        lease = await mine.acquire("r", TTL)
        assert lease is not None
        print("acquired", flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "renew":
                print(f"renewed {await mine.renew(lease)}", flush=True)
            elif command == "held":
                print(f"taken {await other.acquire('r', TTL) is not None}", flush=True)
            elif command == "expire":
                await trio.sleep(TTL.total_seconds() * 1.5)
                print(f"taken {await other.acquire('r', TTL) is not None}", flush=True)
                return


trio.run(main, sys.argv[1])
