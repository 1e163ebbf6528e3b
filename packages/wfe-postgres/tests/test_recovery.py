"""Recovery: the store's connections terminated mid-run (``pg_terminate_backend``) and the
server restarted mid-run (a private cluster). The host reconnects by itself, every
workflow completes, and no step whose result was stored runs again."""

from __future__ import annotations

import secrets
from collections import Counter
from datetime import timedelta
from typing import Any

import psycopg
import pytest
import trio

from wfe.core import StepExecutionContext, WorkflowBuilder, WorkflowStatus
from wfe.core.protocols import Checkpoint
from wfe.host import WorkflowHostBuilder
from wfe.postgres import PostgresPersistenceProvider

from .conftest import URL
from .private_cluster import Cluster

pytestmark = pytest.mark.slow

STEPS = 6
WORKFLOWS = 20


class RecordingStore(PostgresPersistenceProvider):
    """The real store, remembering which step results a stored checkpoint held."""

    def __init__(self, url: str) -> None:
        super().__init__(url, connect_timeout=15)
        self.committed: set[tuple[str, str]] = set()

    async def persist_checkpoint(self, checkpoint: Checkpoint) -> None:
        await super().persist_checkpoint(checkpoint)
        wid = checkpoint.instance.id
        self.committed |= {(wid, key) for key in checkpoint.instance.data}


async def run_while_disrupted(
    url: str,
    disrupt: Any,
    *,
    workflows: int = WORKFLOWS,
    steps: int = STEPS,
    nap: float = 0.01,
    concurrency: int | None = None,
    during: bool = False,
) -> None:
    """Run ``workflows`` workflows of ``steps`` steps on ``url`` while ``disrupt(done)``
    (async) breaks the connections; check all complete and nothing stored ran again.
    ``during``: ``disrupt`` runs beside the waits for the workflows and ``done()`` says
    whether they have all ended; otherwise it is awaited before the waits."""
    store = RecordingStore(url)
    runs: Counter[tuple[str, str]] = Counter()
    reruns: list[tuple[str, str]] = []

    def step(n: int) -> Any:
        async def body(ctx: StepExecutionContext) -> None:
            key = (ctx.workflow.id, f"s{n}")
            if key in store.committed:
                reruns.append(key)
            runs[key] += 1
            await trio.sleep(nap)
            ctx.workflow.data[f"s{n}"] = runs[key]

        return body

    builder = WorkflowBuilder(dict).start_with(step(1))
    for n in range(2, steps + 1):
        builder = builder.then(step(n))
    definition = builder.build("recovery", 1)
    host_builder = (
        WorkflowHostBuilder()
        .persistence(store)
        .register(definition)
        .poll_interval(timedelta(milliseconds=200))
        .lease_ttl(timedelta(seconds=3))
    )
    if concurrency is not None:
        host_builder = host_builder.max_concurrent_workflows(concurrency)
    done: list[Any] = []
    async with host_builder.build() as host:
        ids = [await host.start_workflow("recovery", 1, {}) for _ in range(workflows)]

        async def wait_all() -> None:
            done.extend([await host.wait_for_workflow(wid, timeout=90) for wid in ids])

        with trio.fail_after(90):
            if during:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(wait_all)
                    await disrupt(lambda: bool(done))
            else:
                await disrupt(lambda: False)
                await wait_all()
    assert [w.status for w in done] == [WorkflowStatus.COMPLETE] * workflows
    for w in done:
        assert sorted(w.data) == sorted(f"s{n}" for n in range(1, steps + 1)), w.data
    assert reruns == [], f"steps whose results were stored ran again: {reruns}"


async def test_terminated_backends_mid_run(store_url: str) -> None:
    app = f"wfe_recovery_{secrets.token_hex(4)}"
    url = f"{store_url}&application_name={app}"
    terminated: list[int] = []

    async def disrupt(done: Any) -> None:
        for _ in range(5):
            await trio.sleep(0.15)
            with psycopg.connect(URL, autocommit=True) as conn:
                rows = conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = %s",
                    (app,),
                ).fetchall()
            terminated.append(len(rows))

    await run_while_disrupted(url, disrupt)
    assert sum(terminated) > 0, "no connection was terminated: the test proved nothing"


async def test_server_restart_mid_run(cluster: Cluster) -> None:
    url = f"{cluster.url()}?schema=restart_{secrets.token_hex(4)}"

    async def disrupt(done: Any) -> None:
        await trio.sleep(0.2)
        await trio.to_thread.run_sync(cluster.restart)

    await run_while_disrupted(url, disrupt)


async def test_change_feed_survives_a_restart(cluster: Cluster) -> None:
    """After a restart the LISTEN connection comes back, and a status change committed
    by another provider (another pool) reaches ``watch_workflows``."""
    from wfe.core.testing import make_instance

    url = f"{cluster.url()}?schema=feed_{secrets.token_hex(4)}"
    seen: list[str] = []
    async with PostgresPersistenceProvider(url) as watcher, trio.open_nursery() as nursery:
        nursery.start_soon(watcher.watch_workflows, seen.append)
        listener = watcher._db.listener
        await listener.wait_connected()
        before = listener.connections
        await trio.to_thread.run_sync(cluster.restart)
        with trio.fail_after(30):
            while listener.connections == before or not listener.connected:
                await trio.sleep(0.01)
        async with PostgresPersistenceProvider(url) as writer:
            instance = make_instance()
            await writer.create_workflow(instance)
            instance.status = WorkflowStatus.COMPLETE
            await writer.persist_checkpoint(Checkpoint(instance=instance))
            with trio.fail_after(10):
                while instance.id not in seen:
                    await trio.sleep(0.005)
        nursery.cancel_scope.cancel()
