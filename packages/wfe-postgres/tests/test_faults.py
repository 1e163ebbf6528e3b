"""The store's PostgreSQL backends terminated while their statements (group commits
among them) are in flight, many times, under many concurrent workflows: the host
reconnects, every commit either happened or is retried, every workflow completes with
every step, and no step whose checkpoint was stored runs again.

(Terminations at random moments and a server restart under load are in
test_recovery.py; this one aims at the commits themselves.)"""

from __future__ import annotations

import secrets
from collections import Counter
from datetime import timedelta
from typing import Any

import psycopg
import pytest
import trio

from wfe.core import StepExecutionContext, WorkflowBuilder, WorkflowStatus
from wfe.host import WorkflowHostBuilder
from wfe.postgres._settings import DEFAULT_APPLICATION_NAME, parse

from .conftest import URL
from .test_recovery import RecordingStore

pytestmark = pytest.mark.slow

WORKFLOWS = 60
STEPS = 4
KILLS = 8  # terminations of a backend caught inside a statement, at most


def _terminate_busy(app: str) -> int:
    """Terminate the backends of ``app`` that are running a statement or are inside a
    transaction right now; how many."""
    with psycopg.connect(URL, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = %s AND state <> 'idle'",
            (app,),
        ).fetchall()
    return sum(1 for (done,) in rows if done)


async def test_backends_terminated_mid_commit(store_url: str) -> None:
    app = f"wfe_faults_{secrets.token_hex(4)}"
    store = RecordingStore(f"{store_url}&application_name={app}")
    runs: Counter[tuple[str, str]] = Counter()
    reruns: list[tuple[str, str]] = []

    def step(n: int) -> Any:
        async def body(ctx: StepExecutionContext) -> None:
            key = (ctx.workflow.id, f"s{n}")
            if key in store.committed:
                reruns.append(key)
            runs[key] += 1
            await trio.sleep(0.005)
            ctx.workflow.data[f"s{n}"] = True

        return body

    builder = WorkflowBuilder(dict).start_with(step(1))
    for n in range(2, STEPS + 1):
        builder = builder.then(step(n))
    host_builder = (
        WorkflowHostBuilder()
        .persistence(store)
        .register(builder.build("faults", 1))
        .max_concurrent_workflows(WORKFLOWS)
        .poll_interval(timedelta(milliseconds=200))
        .lease_ttl(timedelta(seconds=3))
    )
    killed = 0
    done: list[Any] = []
    async with host_builder.build() as host:
        ids = [await host.start_workflow("faults", 1, {}) for _ in range(WORKFLOWS)]

        async def wait_all() -> None:
            done.extend([await host.wait_for_workflow(wid, timeout=20) for wid in ids])

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(wait_all)
                # Until the work is done: terminating idle backends only after it would
                # test nothing, so count only those caught inside a statement.
                while killed < KILLS and not done:
                    killed += await trio.to_thread.run_sync(_terminate_busy, app)
                    await trio.sleep(0.005)
    assert killed > 0, "no backend was caught inside a statement: the test proved nothing"
    assert [w.status for w in done] == [WorkflowStatus.COMPLETE] * WORKFLOWS
    for w in done:
        assert sorted(w.data) == [f"s{n}" for n in range(1, STEPS + 1)], w.data
    assert reruns == [], f"steps whose checkpoints were stored ran again: {reruns}"


def test_connections_carry_an_application_name() -> None:
    """What the terminations above find the store's backends by; a URL may rename it."""
    assert f"application_name={DEFAULT_APPLICATION_NAME}" in parse(URL).conninfo
    named = parse(f"{URL}?application_name=billing").conninfo
    assert "application_name=billing" in named
    assert f"application_name={DEFAULT_APPLICATION_NAME}" not in named
