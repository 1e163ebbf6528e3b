"""Random workflow definitions end the same on every store: memory, SQLite and
PostgreSQL hosts run each generated definition (``workflow_trees.py``) and must agree on
the final status, the data (what ran, in order unless branches ran concurrently), the
pointers (step name and status) and the errors recorded.
"""

from __future__ import annotations

import contextlib
import itertools
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import trio
from hypothesis import given, settings

from wfe.core import WorkflowInstance
from wfe.host import WorkflowHost, WorkflowHostBuilder

from . import pg_support
from .property_support import PROFILE, call, new_schema, postgres_available
from .workflow_trees import Seq, build, describe, is_concurrent, start_data, workflow_trees


def _summary(instance: WorkflowInstance, errors: list[Any], concurrent: bool) -> dict[str, Any]:
    """What must agree. Normalised: with concurrent branches, the log and the pointers
    are compared as multisets (their order is the order the branches happened to run);
    error messages without their times (wall clock)."""
    log = list(instance.data["log"])
    pointers = [(str(p.step_name), str(p.status)) for p in instance.execution_pointers]
    return {
        "status": str(instance.status),
        "log": sorted(log) if concurrent else log,
        "loops": instance.data["loops"],
        "pointers": sorted(Counter(pointers).items()) if concurrent else pointers,
        "errors": sorted(e.message for e in errors),
    }


async def _run(hosts: dict[str, WorkflowHost], tree: Seq, definition_id: str) -> dict[str, Any]:
    definition = build(tree, definition_id)
    concurrent = is_concurrent(tree)
    results: dict[str, Any] = {}

    async def one(name: str, host: WorkflowHost) -> None:
        host.register(definition)
        wid = await host.start_workflow(definition_id, 1, start_data())
        instance = await host.wait_for_workflow(wid, timeout=20)
        results[name] = _summary(instance, await host.get_errors(wid), concurrent)

    async with trio.open_nursery() as nursery:
        for name, host in hosts.items():
            nursery.start_soon(one, name, host)
    return results


async def test_random_definitions_end_the_same_on_every_store(tmp_path: Path) -> None:
    """Nested sequences, if/while/for-each, parallel branches, sagas, a final decide, and
    steps that retry, suspend, terminate or compensate: memory, SQLite and PostgreSQL
    agree on how each workflow ends and on everything it recorded."""
    urls = {"memory": "memory://", "sqlite": f"sqlite:///{tmp_path / 'wfe.db'}"}
    schema = new_schema() if postgres_available() else None
    if schema is not None:
        urls["postgres"] = pg_support.with_schema(pg_support.URL, schema)
    ids = itertools.count()
    try:
        async with contextlib.AsyncExitStack() as stack:
            hosts = {}
            for name, url in urls.items():
                builder = (
                    WorkflowHostBuilder()
                    .persistence(url)
                    .poll_interval(timedelta(seconds=1))
                    .lease_ttl(timedelta(seconds=5))
                )
                hosts[name] = await stack.enter_async_context(builder.build())

            @settings(PROFILE, max_examples=40)
            @given(workflow_trees)
            def check(tree: Seq) -> None:
                results = call(_run, hosts, tree, f"prop-{next(ids)}")
                model = results["memory"]
                for name, got in results.items():
                    assert got == model, (
                        f"{name} differs from memory for the definition\n{describe(tree)}\n"
                        f"memory: {model}\n{name}: {got}"
                    )

            await trio.to_thread.run_sync(check)
    finally:
        if schema is not None:
            pg_support.drop_schema(schema)
