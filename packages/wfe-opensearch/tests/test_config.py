"""Reading ``opensearch://`` URLs and options."""

from __future__ import annotations

import pytest

from wfe.core import ConfigurationError
from wfe.core.discovery import load_provider
from wfe.opensearch import DEFAULT_INDEX, OpenSearchIndex
from wfe.opensearch._config import parse_url


def test_url_parts_and_defaults() -> None:
    s = parse_url("opensearch://search.internal")
    assert (s.host, s.port, s.use_ssl, s.index) == ("search.internal", 9200, False, DEFAULT_INDEX)
    s = parse_url("opensearch+https://u:p%40ss@h:9201/my-index?verify_certs=false&timeout=3")
    assert (s.host, s.port, s.use_ssl, s.index) == ("h", 9201, True, "my-index")
    assert (s.username, s.password, s.verify_certs, s.timeout) == ("u", "p@ss", False, 3.0)
    assert "p@ss" not in repr(s)
    assert "p%40ss" not in s.where


def test_keyword_options_override_the_url() -> None:
    s = parse_url("opensearch://h/a", index="b", timeout=2, ca_certs="/etc/ca.pem")
    assert (s.index, s.timeout, s.ca_certs) == ("b", 2.0, "/etc/ca.pem")


@pytest.mark.parametrize(
    ("url", "options", "expected"),
    [
        ("http://h:9200", {}, "must start with opensearch://"),
        ("opensearch://", {}, "names no host"),
        ("opensearch://h:99999", {}, "invalid port"),
        ("opensearch://h?shards=3", {}, "unknown option 'shards'"),
        ("opensearch://h?verify_certs=maybe", {}, "verify_certs must be true or false"),
        ("opensearch://h?timeout=-1", {}, "timeout must be positive"),
        ("opensearch://h/Upper", {}, "must be lower case"),
        ("opensearch://h/_hidden", {}, "cannot start with"),
        ("opensearch://h", {"index": "a b"}, "must be lower case"),
        ("opensearch://h", {"shards": 3}, "unknown OpenSearch option 'shards'"),
    ],
)
def test_bad_urls_and_options_say_what_is_wrong(
    url: str, options: dict[str, object], expected: str
) -> None:
    with pytest.raises(ConfigurationError, match=expected):
        parse_url(url, **options)


def test_a_bad_url_never_shows_its_password() -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_url("opensearch://admin:hunter2@h:notaport")
    assert "hunter2" not in str(info.value)


def test_both_schemes_are_discovered_as_search_indexes() -> None:
    for url in ("opensearch://h:9200", "opensearch+https://h:9200"):
        index = load_provider("wfe.search", url)
        assert isinstance(index, OpenSearchIndex)
    assert load_provider("wfe.search", "opensearch+https://h").settings.use_ssl
