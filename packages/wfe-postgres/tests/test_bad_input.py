"""Bad configuration gets a clear error naming what is wrong, the host and the database,
and never the password: malformed URLs and options, an unreachable server, a missing
database, a wrong password, a user without the right to create the schema."""

from __future__ import annotations

import secrets
import socket

import pytest

from wfe.core import ConfigurationError, DataSerializationError, WfeError
from wfe.core.testing import make_instance
from wfe.host import WorkflowHostBuilder
from wfe.postgres import PostgresPersistenceProvider, PostgresQueueProvider

from .conftest import URL, server_available
from .private_cluster import PASSWORD, Cluster

SECRET = "Hunter2-secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def refused(exc: BaseException, *must: str) -> str:
    text = str(exc)
    for word in (SECRET, PASSWORD):
        assert word not in text, f"the password leaked: {text}"
    for word in must:
        assert word in text, f"{word!r} missing from: {text}"
    return text


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"mysql://u:{SECRET}@h/db", "not a PostgreSQL URL"),
        (f"postgresql://u:{SECRET}@h:notaport/db", "malformed PostgreSQL URL"),
        (f"postgresql://u:{SECRET}@h:5432", "names no database"),
        (f"postgresql://u:{SECRET}@h:5432/", "names no database"),
        (f"postgresql://u:{SECRET}@h/db?schema=Bad-Name", "not a valid schema name"),
        (f"postgresql://u:{SECRET}@h/db?schema=a&schema=b", "more than once"),
        (f"postgresql://u:{SECRET}@h/db?schema=pg_catalog", "reserved"),
        (f"postgresql://u:{SECRET}@h/db#frag", "fragment"),
    ],
)
def test_malformed_urls_are_refused_before_connecting(url: str, expected: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        PostgresPersistenceProvider(url)
    refused(info.value, expected)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"schema": "x; DROP TABLE y"}, "not a valid schema name"),
        ({"pool_size": 0}, "pool_size"),
        ({"visibility_timeout": -1}, "visibility_timeout"),
        ({"poll_interval": 0}, "poll_interval"),
    ],
)
def test_bad_options_are_refused(options: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        PostgresQueueProvider(f"postgresql://u:{SECRET}@h/db", **options)  # type: ignore[arg-type]
    refused(info.value, expected)


def test_conflicting_schema_in_url_and_option_is_refused() -> None:
    with pytest.raises(ConfigurationError) as info:
        PostgresPersistenceProvider(f"postgresql://u:{SECRET}@h/db?schema=a", schema="b")
    refused(info.value, "schema='a'", "schema='b'")


async def test_unreachable_server_names_host_and_database() -> None:
    port = _free_port()
    url = f"postgresql://app:{SECRET}@127.0.0.1:{port}/orders"
    with pytest.raises(ConfigurationError) as info:
        async with PostgresPersistenceProvider(url, connect_timeout=2):
            pass
    text = refused(info.value, f"127.0.0.1:{port}", "'orders'")
    assert "is the server running" in text.lower()


async def test_unreachable_server_through_the_host_builder() -> None:
    url = f"postgresql://app:{SECRET}@127.0.0.1:{_free_port()}/orders"
    with pytest.raises(WfeError) as info:
        async with WorkflowHostBuilder().persistence(url).build():
            pass
    refused(info.value, "'orders'")


async def test_missing_database_is_named_with_a_hint() -> None:
    server_available()
    base = URL.rsplit("/", 1)[0]
    missing = f"wfe_missing_{secrets.token_hex(4)}"
    url = base.replace("://", f"://postgres:{SECRET}@", 1) if "@" not in base else base
    with pytest.raises(ConfigurationError) as info:
        async with PostgresPersistenceProvider(f"{url}/{missing}"):
            pass
    refused(info.value, repr(missing), "does not exist", "createdb")


async def test_wrong_password_is_refused_without_showing_it(cluster: Cluster) -> None:
    url = cluster.url(password=SECRET)
    with pytest.raises(ConfigurationError) as info:
        async with PostgresPersistenceProvider(url):
            pass
    refused(info.value, "password authentication failed", f"127.0.0.1:{cluster.port}")


async def test_user_without_create_rights_gets_permission_denied(cluster: Cluster) -> None:
    user = f"app_{secrets.token_hex(3)}"
    cluster.psql(f"CREATE ROLE {user} LOGIN PASSWORD '{SECRET}'")
    cluster.psql(f"REVOKE CREATE ON DATABASE postgres FROM {user}")
    url = cluster.url(user=user, password=SECRET)
    with pytest.raises(ConfigurationError) as info:
        async with PostgresPersistenceProvider(f"{url}?schema=denied"):
            pass
    refused(info.value, "permission denied", "'postgres'", user)


async def test_nul_in_an_event_key_is_refused_naming_the_field(
    persistence: PostgresPersistenceProvider,
) -> None:
    from wfe.core import Event

    with pytest.raises(DataSerializationError) as info:
        await persistence.create_event(Event(name="go", key="a\x00b"))
    assert "NUL" in str(info.value)
    assert "key" in str(info.value)
    # NUL inside workflow data is fine: JSON escapes it.
    instance = make_instance(data={"text": "a\x00b"})
    await persistence.create_workflow(instance)
    assert (await persistence.get_workflow(instance.id)).data == {"text": "a\x00b"}
