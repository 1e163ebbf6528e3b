"""What a ``postgresql://`` URL and its keyword options configure, validated up front.

The URL is libpq's (``postgresql://user:pw@host:port/db?sslmode=require``), plus one
wfe option, ``schema`` (also a keyword argument), naming the PostgreSQL schema that
holds wfe's tables, so several stores (or test runs) share one database. Every other
query parameter goes to libpq as it is. Error messages name the host, port, database
and user, never the password (:func:`wfe.core.redact_url`).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import attrs

from wfe.core import ConfigurationError, redact_url

SCHEMES = ("postgresql", "postgres")
DEFAULT_SCHEMA = "wfe"
# Lower case only: an unquoted identifier folds to lower case, so a mixed-case name
# would name a different schema in psql than here.
_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_WFE_PARAMS = ("schema",)
_FORMS = "postgresql://user:password@host:5432/database?schema=wfe"


DEFAULT_APPLICATION_NAME = "wfe"
"""The ``application_name`` of the store's connections unless the URL gives one."""


@attrs.frozen(kw_only=True)
class Settings:
    """A validated store configuration; ``conninfo`` still holds the password (it is
    what libpq needs), ``label`` never does."""

    conninfo: str
    label: str  # "database test on 127.0.0.1:5432 as postgres, schema wfe"
    host: str
    port: int
    database: str
    user: str
    schema: str
    pool_size: int
    visibility_timeout: float
    poll_interval: float
    connect_timeout: float

    @property
    def channel(self) -> str:
        """The LISTEN/NOTIFY channel of this schema (case-sensitive, quoted)."""
        return f"wfe_{self.schema}"


def check_schema(schema: object) -> str:
    if not isinstance(schema, str) or not _SCHEMA_RE.match(schema):
        raise ConfigurationError(
            f"schema={schema!r} is not a valid schema name for the PostgreSQL store: use "
            "1 to 63 lower-case letters, digits and underscores, not starting with a digit"
        )
    if schema.startswith("pg_"):
        raise ConfigurationError(f"schema={schema!r}: names starting with pg_ are reserved")
    return schema


def parse(
    url: str,
    *,
    schema: str | None = None,
    pool_size: int = 8,
    visibility_timeout: float = 30.0,
    poll_interval: float = 1.0,
    connect_timeout: float = 10.0,
) -> Settings:
    """Validate ``url`` and the options; raise :class:`ConfigurationError` naming what
    is wrong (with the password masked)."""
    if not isinstance(url, str):
        raise ConfigurationError(f"PostgreSQL store URL must be a string, got {url!r}")
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
        port = parts.port or 5432
    except ValueError as exc:
        raise ConfigurationError(
            f"malformed PostgreSQL URL {shown}: {redact_url(str(exc), url)}; expected {_FORMS}"
        ) from None
    if parts.scheme not in SCHEMES:
        raise ConfigurationError(f"not a PostgreSQL URL: {shown}; expected {_FORMS}")
    if parts.fragment:
        raise ConfigurationError(f"PostgreSQL URL {shown} has a #fragment; remove it")
    database = unquote(parts.path.lstrip("/"))
    if not database or "/" in database:
        raise ConfigurationError(
            f"PostgreSQL URL {shown} names no database (or a path): expected {_FORMS}"
        )
    host = parts.hostname or "localhost"
    user = unquote(parts.username or "") or "the default user"
    params = parse_qsl(parts.query, keep_blank_values=True)
    url_schema = [v for k, v in params if k == "schema"]
    if len(url_schema) > 1:
        raise ConfigurationError(f"PostgreSQL URL {shown} gives schema= more than once")
    if url_schema and schema is not None and url_schema[0] != schema:
        raise ConfigurationError(
            f"PostgreSQL URL {shown} says schema={url_schema[0]!r} but the keyword option "
            f"says schema={schema!r}; give it once"
        )
    chosen = check_schema(schema if schema is not None else (url_schema or [DEFAULT_SCHEMA])[0])
    if not isinstance(pool_size, int) or isinstance(pool_size, bool) or pool_size < 1:
        raise ConfigurationError(f"pool_size must be an integer >= 1, got {pool_size!r}")
    for name, value in (
        ("visibility_timeout", visibility_timeout),
        ("poll_interval", poll_interval),
        ("connect_timeout", connect_timeout),
    ):
        if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
            raise ConfigurationError(f"{name} must be a positive number of seconds, got {value!r}")
    rest = [(k, v) for k, v in params if k not in _WFE_PARAMS]
    if not any(k == "connect_timeout" for k, _ in rest):
        # libpq waits forever for an unreachable host by default.
        rest.append(("connect_timeout", str(max(1, round(connect_timeout)))))
    if not any(k == "application_name" for k, _ in rest):
        # Names the store's sessions in pg_stat_activity (an operator finding, or a
        # test terminating, wfe's own backends); the URL may give another name.
        rest.append(("application_name", DEFAULT_APPLICATION_NAME))
    conninfo = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(rest), ""))
    return Settings(
        conninfo=conninfo,
        label=f"database {database!r} on {host}:{port} as {user}, schema {chosen}",
        host=host,
        port=port,
        database=database,
        user=user,
        schema=chosen,
        pool_size=pool_size,
        visibility_timeout=float(visibility_timeout),
        poll_interval=float(poll_interval),
        connect_timeout=float(connect_timeout),
    )
