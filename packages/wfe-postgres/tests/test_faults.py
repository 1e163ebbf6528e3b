"""The store's PostgreSQL backends terminated while their statements (group commits
among them) are in flight, many times, under many concurrent workflows: the host
reconnects, every commit either happened or is retried, every workflow completes with
every step, and no step whose checkpoint was stored runs again.

(Terminations at random moments and a server restart under load are in
test_recovery.py; this one aims at the commits themselves.)"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
import trio

from wfe.postgres._settings import DEFAULT_APPLICATION_NAME, parse

from .conftest import URL
from .test_recovery import run_while_disrupted

pytestmark = pytest.mark.slow

WORKFLOWS = 60
STEPS = 4
KILLS = 8  # terminations of a backend caught inside a statement, at most
ROUNDS = 5  # workloads to run until one has been caught


def _terminate_busy(conn: psycopg.Connection[Any], app: str) -> int:
    """Terminate the backends of ``app`` that are running a statement or are inside a
    transaction right now; how many."""
    rows = conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = %s AND state <> 'idle'",
        (app,),
    ).fetchall()
    return sum(1 for (done,) in rows if done)


async def test_backends_terminated_mid_commit(store_url: str) -> None:
    app = f"wfe_faults_{secrets.token_hex(4)}"
    killed = 0

    async def disrupt(done: Callable[[], bool]) -> None:
        # Until the work is done: terminating idle backends only after it would test
        # nothing, so count only those caught inside a statement. One connection for
        # every look, so the looks come close together (statements last ~0.1 ms).
        nonlocal killed
        conn = await trio.to_thread.run_sync(lambda: psycopg.connect(URL, autocommit=True))
        try:
            while killed < KILLS and not done():
                killed += await trio.to_thread.run_sync(_terminate_busy, conn, app)
                await trio.sleep(0.001)
        finally:
            conn.close()

    # Each round is a whole recovery check; a round whose statements all slipped
    # between the looks proves nothing, so run another (a miss is rare: none in a row
    # of several has been seen).
    for _ in range(ROUNDS):
        await run_while_disrupted(
            f"{store_url}&application_name={app}",
            disrupt,
            workflows=WORKFLOWS,
            steps=STEPS,
            nap=0.005,
            concurrency=WORKFLOWS,
            during=True,
        )
        if killed:
            break
    assert killed > 0, "no backend was caught inside a statement: the test proved nothing"


def test_connections_carry_an_application_name() -> None:
    """What the terminations above find the store's backends by; a URL may rename it."""
    assert f"application_name={DEFAULT_APPLICATION_NAME}" in parse(URL).conninfo
    named = parse(f"{URL}?application_name=billing").conninfo
    assert "application_name=billing" in named
    assert f"application_name={DEFAULT_APPLICATION_NAME}" not in named
