"""Where the index lives: parsing and checking ``opensearch://`` URLs."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import attrs

from wfe.core import ConfigurationError, redact_url

DEFAULT_INDEX = "wfe-workflows"
_SCHEMES = {"opensearch": False, "opensearch+https": True}
_BOOLS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
# OpenSearch's rules for index names: lower case, none of these characters, not
# starting with -, _ or +, not . or .., at most 255 bytes.
_BAD_INDEX_CHARS = re.compile(r'[\\/*?"<>| ,#:A-Z]')


@attrs.frozen(kw_only=True)
class Settings:
    """A parsed index location. ``password`` never appears in ``repr`` or messages."""

    url: str
    host: str
    port: int
    use_ssl: bool
    index: str
    username: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    verify_certs: bool = True
    ca_certs: str | None = None
    timeout: float = 10.0

    @property
    def where(self) -> str:
        """The location for messages: the URL without its password."""
        return redact_url(self.url, self.url)


def check_index_name(name: str) -> str:
    """``name`` if OpenSearch accepts it as an index name, else a ConfigurationError."""
    problem = None
    if not name:
        problem = "is empty"
    elif name in {".", ".."}:
        problem = "cannot be . or .."
    elif name[0] in "-_+":
        problem = "cannot start with -, _ or +"
    elif _BAD_INDEX_CHARS.search(name):
        problem = 'must be lower case without spaces or any of \\ / * ? " < > | , # :'
    elif len(name.encode()) > 255:
        problem = "is longer than 255 bytes"
    if problem is not None:
        raise ConfigurationError(f"OpenSearch index name {name!r} {problem}")
    return name


def parse_url(url: str, **options: Any) -> Settings:
    """Settings from ``opensearch[+https]://[user:password@]host[:port][/index][?opts]``.

    Query options: ``verify_certs`` (true/false), ``ca_certs`` (a file), ``timeout``
    (seconds). Keyword ``options`` of the same names, and ``index``, ``username``,
    ``password``, override the URL.
    """
    where = redact_url(url, url)
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES:
        raise ConfigurationError(
            f"OpenSearch URL {where!r} must start with opensearch:// or opensearch+https://"
        )
    try:
        port = parts.port or 9200
    except ValueError:
        raise ConfigurationError(f"OpenSearch URL {where!r} has an invalid port") from None
    if not parts.hostname:
        raise ConfigurationError(f"OpenSearch URL {where!r} names no host")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    values: dict[str, Any] = {
        "url": url,
        "host": parts.hostname,
        "port": port,
        "use_ssl": _SCHEMES[parts.scheme],
        "index": unquote(parts.path.strip("/")) or DEFAULT_INDEX,
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
    }
    for key, raw in query.items():
        if key == "verify_certs":
            if raw.lower() not in _BOOLS:
                raise ConfigurationError(
                    f"OpenSearch URL {where!r}: verify_certs must be true or false, got {raw!r}"
                )
            values[key] = _BOOLS[raw.lower()]
        elif key == "ca_certs":
            values[key] = raw
        elif key == "timeout":
            values[key] = _positive(raw, f"OpenSearch URL {where!r}: timeout")
        else:
            known = "verify_certs, ca_certs, timeout"
            raise ConfigurationError(
                f"OpenSearch URL {where!r} has unknown option {key!r} (known: {known})"
            )
    allowed = {"index", "username", "password", "verify_certs", "ca_certs", "timeout"}
    for key, value in options.items():
        if key not in allowed:
            raise ConfigurationError(
                f"unknown OpenSearch option {key!r} (known: {', '.join(sorted(allowed))})"
            )
        values[key] = _positive(value, "OpenSearch timeout") if key == "timeout" else value
    check_index_name(values["index"])
    return Settings(**values)


def _positive(raw: Any, what: str) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{what} must be a number of seconds, got {raw!r}") from None
    if not value > 0:
        raise ConfigurationError(f"{what} must be positive, got {raw!r}")
    return value
