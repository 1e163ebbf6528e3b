"""The PostgreSQL store for the host tests: a fresh schema per test on the server named by
``WFE_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``).

A test on PostgreSQL is skipped, with a message naming the variable, when the server is
unreachable, unless ``WFE_REQUIRE_SERVICES`` names ``postgres``: then it fails.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest

from wfe.core.discovery import installed_schemes

URL = os.environ.get("WFE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
INSTALLED = "postgresql" in installed_schemes("wfe.persistence")

_reason: str | None = None  # None: not checked yet; "": reachable


def require_server() -> None:
    """Skip (or fail, when required) unless the test server answers."""
    global _reason
    if _reason is None:
        import psycopg

        try:
            with psycopg.connect(URL, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            _reason = ""
        except psycopg.Error as exc:
            _reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if _reason:
        message = f"PostgreSQL at WFE_TEST_POSTGRES_URL ({URL}) is unreachable: {_reason}"
        names = os.environ.get("WFE_REQUIRE_SERVICES", "")
        if "postgres" in {n.strip().lower() for n in names.split(",")}:
            pytest.fail(message + " (WFE_REQUIRE_SERVICES names postgres)")
        pytest.skip(message)


def with_schema(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def fresh_store() -> Iterator[str]:
    """Yield the URL of a new schema (the store creates it), then drop it."""
    require_server()
    schema = f"h_{secrets.token_hex(6)}"
    try:
        yield with_schema(URL, schema)
    finally:
        drop_schema(schema)
