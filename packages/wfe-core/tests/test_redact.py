"""redact_url removes passwords from URLs of every scheme and from text quoting them."""

from __future__ import annotations

import pytest

from wfe.core import redact_url

SCHEMES = ["postgresql", "postgres", "sqlite", "valkey", "redis", "opensearch", "memory"]


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("password", ["s3cret", "p%40ss:word", "with@at", "a;b,c"])
def test_userinfo_password_is_masked_for_every_scheme(scheme: str, password: str) -> None:
    url = f"{scheme}://user:{password}@db.example:5432/wfe"
    shown = redact_url(url)
    assert shown == f"{scheme}://user:***@db.example:5432/wfe"
    message = f"connection to {url!r} failed: password {password} rejected"
    assert password not in redact_url(message, url)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_password_query_parameters_are_masked(scheme: str) -> None:
    url = f"{scheme}://db.example/wfe?sslmode=require&password=hunter22&token=abc123"
    shown = redact_url(url)
    assert "hunter22" not in shown
    assert "abc123" not in shown
    assert "sslmode=require" in shown


def test_libpq_key_value_strings_and_decoded_passwords_are_masked() -> None:
    assert redact_url("host=db password='x y z' dbname=wfe") == "host=db password='***' dbname=wfe"
    url = "redis://:p%40ss%3Aw0rd@cache:6379/0"
    assert "p@ss:w0rd" not in redact_url("auth failed for p@ss:w0rd", url)


def test_urls_without_passwords_are_unchanged() -> None:
    for url in ("sqlite:///.wfe/wfe.db", "valkey://cache:6379/0", "postgresql://app@db/wfe"):
        assert redact_url(url) == url
        assert redact_url(f"store {url}: refused", url) == f"store {url}: refused"
