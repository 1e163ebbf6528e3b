"""Fixtures: every scenario runs on every installed store (memory, SQLite, ...)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from wfe.core.discovery import installed_schemes
from wfe.host import WorkflowHost, WorkflowHostBuilder

from . import pg_support

STORES = ["memory"] + (["sqlite"] if "sqlite" in installed_schemes("wfe.persistence") else [])
STORES += ["postgres"] if pg_support.INSTALLED else []

HostFactory = Callable[..., contextlib.AbstractAsyncContextManager[WorkflowHost]]


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store URL per test, for each store kind (PostgreSQL: its own schema)."""
    if request.param == "postgres":
        yield from pg_support.fresh_store()
    elif request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'wfe.db'}"
    else:
        yield "memory://"


@pytest.fixture
def host_factory(store_url: str) -> HostFactory:
    """``async with host_factory(definition, ...) as host`` on the test's store."""

    @contextlib.asynccontextmanager
    async def make(
        *definitions: Any, configure: Callable[[WorkflowHostBuilder], Any] | None = None
    ) -> AsyncIterator[WorkflowHost]:
        builder = (
            WorkflowHostBuilder()
            .persistence(store_url)
            .poll_interval(timedelta(seconds=1))
            .lease_ttl(timedelta(seconds=5))
        )
        for d in definitions:
            builder.register(d)
        if configure is not None:
            configure(builder)
        async with builder.build() as host:
            yield host

    return make
