"""A search server that is down, busy or strict about credentials."""

from __future__ import annotations

import logging

import pytest
import trio

from wfe.core import ConfigurationError, ProviderError
from wfe.core.testing import make_instance
from wfe.opensearch import OpenSearchIndex

from .fake_opensearch import FakeOpenSearch


async def wait_until(condition: object, what: str) -> None:
    with trio.fail_after(30):
        while not condition():  # type: ignore[operator]
            await trio.sleep(0.01)


async def test_a_server_down_at_start_does_not_stop_the_provider_and_writes_wait_for_it(
    fake: FakeOpenSearch, caplog: pytest.LogCaptureFixture
) -> None:
    fake.stop()
    instance = make_instance(reference="late")
    async with OpenSearchIndex(fake.url, index="wfe-down", max_backoff=0.2) as index:
        assert "unreachable" in caplog.text
        async with trio.open_nursery() as nursery:
            done = trio.Event()

            async def write() -> None:
                await index.index(instance)
                done.set()

            nursery.start_soon(write)
            await wait_until(lambda: caplog.text.count("retrying in") >= 1, "a retry")
            assert not done.is_set()
            fake.start()
        await index.refresh()
        assert [r.id for r in (await index.search("late")).items] == [instance.id]
    # Created before the first write, once the server came back.
    assert len(list(fake.of("PUT", "/wfe-down"))) == 1


async def test_a_busy_server_is_retried_and_nothing_is_lost(
    fake: FakeOpenSearch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "wfe.opensearch")
    instances = [make_instance(reference="busy") for _ in range(3)]
    async with OpenSearchIndex(fake.url, index="wfe-busy", max_backoff=0.2) as index:
        fake.unavailable = True
        async with trio.open_nursery() as nursery:
            nursery.start_soon(index.index_many, instances)
            await wait_until(lambda: "HTTP 503" in caplog.text, "a refused bulk")
            fake.unavailable = False
        await index.refresh()
        assert (await index.search("busy")).total == 3
    assert "reachable again" in caplog.text


async def test_a_search_while_the_server_is_down_fails_at_once_and_clearly(
    fake: FakeOpenSearch,
) -> None:
    async with OpenSearchIndex(fake.url, index="wfe-s") as index:
        fake.stop()
        with pytest.raises(
            ProviderError, match=r"searching OpenSearch at opensearch://127\.0\.0\.1"
        ):
            await index.search("anything")


async def test_wrong_credentials_are_named_without_the_password() -> None:
    with FakeOpenSearch(users={"admin": "right-one"}) as server:
        url = f"opensearch://admin:s3cret-pw@127.0.0.1:{server.port}"
        with pytest.raises(ConfigurationError) as info:
            async with OpenSearchIndex(url):
                pass
        message = str(info.value)
        assert "HTTP 401" in message
        assert "user name and password" in message
        assert "s3cret-pw" not in message
        assert "***" in message
        good = f"opensearch://admin:right-one@127.0.0.1:{server.port}/wfe-auth"
        async with OpenSearchIndex(good) as index:
            await index.index(make_instance())
