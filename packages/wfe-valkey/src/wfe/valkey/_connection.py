"""One Valkey/Redis server as the providers see it: a parsed URL, a pool, worker threads.

The sync ``valkey`` client runs in worker threads behind a per-provider
:class:`trio.CapacityLimiter` sized like the connection pool. Measured here (loopback,
2 cores): a ``SET NX PX`` + Lua release cycle cost ~600-720 µs through one thread hop
against ~1,130-1,230 µs through the asyncio client under trio-asyncio, so the thread wins.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

import attrs
import trio

import valkey
import valkey.exceptions as vx
from valkey.cluster import ValkeyCluster
from valkey.commands.core import Script
from valkey.connection import SSLConnection
from wfe.core import ConfigurationError, ProviderError, WfeError, redact_url

from ._tls import TLS_OPTIONS, read_bool, tls_hint, tls_options

log = logging.getLogger("wfe.valkey")

SCHEMES = ("valkey", "valkeys", "redis", "rediss")
DEFAULT_PREFIX = "wfe:"
_T = TypeVar("_T")

# Query parameters a URL may carry, with how to read each; anything else is refused by
# name so a typo does not silently fall back to a default.
_FLOAT_OPTIONS = ("socket_timeout", "socket_connect_timeout")
_INT_OPTIONS = ("db", "pool_size")

Client = valkey.Valkey | ValkeyCluster
"""A client of one server, or of a whole cluster (``?cluster=true``)."""

DRIVER_ERRORS = (vx.ValkeyError, vx.ValkeyClusterException)
"""What the driver raises (its cluster errors do not derive from ``ValkeyError``)."""


@attrs.frozen(kw_only=True)
class Settings:
    """Where the server is and how to talk to it (parsed from a URL and keywords)."""

    url: str
    host: str
    port: int
    db: int
    username: str | None
    password: str | None = attrs.field(repr=False)
    tls: bool
    tls_options: tuple[tuple[str, Any], ...] = ()
    cluster: bool = False
    prefix: str
    pool_size: int
    socket_timeout: float
    socket_connect_timeout: float

    @property
    def label(self) -> str:
        """The URL without its password, for messages."""
        return redact_url(self.url)

    @property
    def server_key(self) -> tuple[str, int, int, str]:
        """Identifies one keyspace (server, database, prefix) inside this process."""
        return (self.host, self.port, self.db, self.prefix)


def parse_url(
    url: str,
    *,
    prefix: str | None = None,
    pool_size: int | None = None,
    socket_timeout: float | None = None,
    socket_connect_timeout: float | None = None,
    cluster: bool | None = None,
    **tls: object,
) -> Settings:
    """Validate ``url`` (``valkey://[user:password@]host[:port][/db][?prefix=...]``,
    ``valkeys``/``rediss`` for TLS, ``?cluster=true`` for a Valkey/Redis Cluster);
    keywords override query parameters; ``tls`` takes the ``ssl_*`` options.

    Raises :class:`ConfigurationError` naming what is wrong, never the password.
    """
    if not isinstance(url, str):
        raise ConfigurationError(f"a Valkey URL must be a string, got {type(url).__name__}")
    label = redact_url(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigurationError(f"malformed Valkey URL {label}: {redact_url(str(exc))}") from None
    if parts.scheme.lower() not in SCHEMES:
        raise ConfigurationError(
            f"Valkey URL {label} must start with one of {', '.join(s + '://' for s in SCHEMES)}"
        )
    if not parts.hostname:
        raise ConfigurationError(f"Valkey URL {label} names no host (valkey://HOST:PORT/DB)")
    if parts.fragment:
        raise ConfigurationError(f"Valkey URL {label} has a fragment ('#...'); remove it")
    query: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in query:
            raise ConfigurationError(f"Valkey URL {label} repeats the parameter {key!r}")
        query[key] = value
    known = ("prefix", "cluster", *_FLOAT_OPTIONS, *_INT_OPTIONS, *TLS_OPTIONS)
    unknown = sorted(set(query) - set(known))
    if unknown:
        raise ConfigurationError(
            f"Valkey URL {label} has unknown parameter(s) {', '.join(unknown)}; "
            f"known: {', '.join(known)}"
        )
    path = unquote(parts.path).strip("/")
    if path and "db" in query:
        raise ConfigurationError(f"Valkey URL {label} names the database twice (path and ?db=)")
    db = _read_int(query.get("db", path or "0"), "database number", label, minimum=0)
    chosen_prefix = prefix if prefix is not None else query.get("prefix", DEFAULT_PREFIX)
    if not isinstance(chosen_prefix, str) or any(c.isspace() for c in chosen_prefix):
        raise ConfigurationError(
            f"key prefix {chosen_prefix!r} for {label} must be a string without whitespace"
        )
    unknown = sorted(set(tls) - set(TLS_OPTIONS))
    if unknown:
        raise ConfigurationError(
            f"unknown option(s) {', '.join(unknown)} for {label}; "
            f"TLS options: {', '.join(TLS_OPTIONS)}"
        )
    is_tls = parts.scheme.lower() in ("valkeys", "rediss")
    chosen_tls = {
        name: tls[name] if tls.get(name) is not None else query.get(name) for name in TLS_OPTIONS
    }
    on_cluster = read_bool(
        cluster if cluster is not None else query.get("cluster", "false"), "cluster", label
    )
    if on_cluster:
        if db != 0:
            raise ConfigurationError(
                f"Valkey URL {label} names database {db}, but a cluster has only database 0"
            )
        chosen_prefix = cluster_prefix(chosen_prefix, label)
    size = pool_size if pool_size is not None else query.get("pool_size", "16")
    timeout = socket_timeout if socket_timeout is not None else query.get("socket_timeout", "5")
    connect = (
        socket_connect_timeout
        if socket_connect_timeout is not None
        else query.get("socket_connect_timeout", "2")
    )
    return Settings(
        url=url,
        host=parts.hostname,
        port=port if port is not None else 6379,
        db=db,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=is_tls,
        tls_options=tls_options(chosen_tls, tls=is_tls, label=label),
        cluster=on_cluster,
        prefix=chosen_prefix,
        pool_size=_read_int(size, "pool_size", label, minimum=2),
        # Blocking reads wait up to 1 s at the server: a shorter socket timeout would
        # cut them off.
        socket_timeout=_read_float(timeout, "socket_timeout", label, minimum=1.5),
        socket_connect_timeout=_read_float(connect, "socket_connect_timeout", label, minimum=0),
    )


def _hash_tag(key: str) -> str | None:
    """The part of ``key`` a cluster hashes: the text inside its first ``{...}`` when that
    is not empty (the cluster's rule), else ``None`` (the whole key is hashed)."""
    start = key.find("{")
    end = key.find("}", start + 1)
    if start < 0 or end < 0 or end == start + 1:
        return None
    return key[start + 1 : end]


def cluster_prefix(prefix: str, label: str) -> str:
    """The prefix for a cluster: one that is a hash tag by itself, so every key under it
    (each script's keys included) lives in one slot. ``app:`` becomes ``{app:}``; a
    prefix that already carries a tag, such as ``{app}:``, is kept."""
    if _hash_tag(prefix) is not None:
        return prefix
    tagged = "{" + prefix + "}"
    if _hash_tag(tagged) is None or "{" in prefix:
        raise ConfigurationError(
            f"key prefix {prefix!r} for {label} cannot name one cluster hash slot: "
            "use a prefix with a non-empty {tag}, such as '{app}:'"
        )
    return tagged


def _read_int(value: object, what: str, label: str, *, minimum: int) -> int:
    number: int | None
    try:
        number = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        number = None
    if number is None or isinstance(value, bool) or number < minimum:
        raise ConfigurationError(
            f"{what} for {label} must be an integer >= {minimum}, got {value!r}"
        ) from None
    return number


def _read_float(value: object, what: str, label: str, *, minimum: float) -> float:
    number: float | None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = None
    if number is None or isinstance(value, bool) or not number > minimum:
        raise ConfigurationError(
            f"{what} for {label} must be a number of seconds > {minimum}, got {value!r}"
        ) from None
    return number


def translate(exc: BaseException, settings: Settings, doing: str) -> WfeError:
    """A wfe error for a driver failure while ``doing`` something: what failed, where,
    and never the password."""
    text = redact_url(str(exc) or type(exc).__name__, settings.url)
    if settings.password:
        text = text.replace(settings.password, "***")
    where = f"Valkey at {settings.label}"
    if isinstance(exc, vx.AuthenticationError | vx.AuthenticationWrongNumberOfArgsError) or (
        isinstance(exc, vx.ResponseError) and str(exc).startswith(("NOAUTH", "WRONGPASS"))
    ):
        return ConfigurationError(
            f"{where} refused the credentials while {doing}: {text}; "
            "check the user name and password in the URL"
        )
    if isinstance(exc, vx.ConnectionError | vx.TimeoutError | OSError):
        hint = tls_hint(exc, tls=settings.tls)
        return ProviderError(f"cannot reach {where} while {doing}: {text}{hint}")
    if isinstance(exc, vx.ValkeyClusterException) and "not enabled" in str(exc):
        return ConfigurationError(
            f"{where} is not a cluster (cluster mode is not enabled on it): "
            "remove cluster=true from the URL"
        )
    if isinstance(exc, vx.ValkeyClusterException) and "cannot be connected" in str(exc):
        hint = tls_hint(exc, tls=settings.tls)
        return ProviderError(f"cannot reach {where} while {doing}: {text}{hint}")
    return ProviderError(f"{where} failed while {doing}: {text}")


def is_connection_error(exc: BaseException) -> bool:
    """A failure to reach the server (worth retrying later), not a refused command."""
    return isinstance(exc, vx.ConnectionError | vx.TimeoutError | OSError) and not isinstance(
        exc, vx.AuthenticationError
    )


def close_client(client: Client) -> None:
    """Close ``client`` and its pools' sockets (a client given a pool leaves it open)."""
    client.close()  # type: ignore[no-untyped-call]
    if isinstance(client, valkey.Valkey):
        client.connection_pool.disconnect()


class Server:
    """A connection pool to one server plus the limiter its worker threads share."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.limiter = trio.CapacityLimiter(settings.pool_size)
        self._client: Client | None = None
        self._down_since: float | None = None
        self._last_failure = 0.0

    def failed_recently(self, seconds: float = 1.0) -> bool:
        """Whether a call failed to reach the server within the last ``seconds``."""
        return self._down_since is not None and time.monotonic() - self._last_failure < seconds

    def _note(self, error: WfeError | None) -> None:
        """Log an outage once when it starts and once when it ends, not per call."""
        now = time.monotonic()
        if error is not None:
            self._last_failure = now
            if self._down_since is None:
                self._down_since = now
                log.warning("%s; retrying until it is back", error)
        elif self._down_since is not None:
            log.warning(
                "Valkey at %s is reachable again after %.1f s",
                self.settings.label,
                now - self._down_since,
            )
            self._down_since = None

    def make_client(self, **overrides: Any) -> Client:
        """A new client with its own pool (the subscriber uses one alone); on a cluster,
        a cluster client (it connects, to learn the slots, as it is made: call it in a
        worker thread).

        Connections are named ``<prefix><pid>`` (``CLIENT LIST`` shows whose they are)."""
        s = self.settings
        kwargs: dict[str, Any] = {
            "client_name": f"{s.prefix}{os.getpid()}",
            "host": s.host,
            "port": s.port,
            "username": s.username,
            "password": s.password,
            "socket_timeout": s.socket_timeout,
            "socket_connect_timeout": s.socket_connect_timeout,
            "max_connections": s.pool_size,
        }
        if s.cluster:
            # One pool per node, each at most pool_size; the limiter bounds the total.
            if s.tls:
                kwargs["ssl"] = True
                kwargs.update(s.tls_options)
            kwargs.update(overrides)
            return ValkeyCluster(**kwargs)
        kwargs["db"] = s.db
        # A pool that waits for a free connection instead of failing when every
        # connection is busy (the limiter normally prevents that already).
        kwargs["timeout"] = s.socket_timeout
        if s.tls:
            kwargs["connection_class"] = SSLConnection
            kwargs.update(s.tls_options)
        kwargs.update(overrides)
        pool = valkey.BlockingConnectionPool(**kwargs)  # type: ignore[no-untyped-call]
        return valkey.Valkey(connection_pool=pool)

    @property
    def client(self) -> Client:
        if self._client is None:
            raise ProviderError(
                f"the provider for {self.settings.label} is not open: use it in 'async with'"
            )
        return self._client

    def register_script(self, source: str) -> Script:
        """A Lua script run by ``EVALSHA`` on the open client (loaded again by itself
        after a server restart); on a cluster it runs on the node of its keys' slot."""
        client: Any = self.client  # the driver's stubs type this for Valkey alone
        script: Script = client.register_script(source)
        return script

    def _connect(self) -> Client:
        """Make the client and check the server answers and is what the URL says: a
        cluster node only with ``cluster=true`` (a plain client there fails later, at
        the first script, with CROSSSLOT or MOVED)."""
        client = self.make_client()
        try:
            client.ping()
            if not self.settings.cluster:
                info: Any
                try:
                    info = client.info("cluster")
                except vx.ResponseError:
                    info = {}  # INFO not allowed to this user (an ACL): nothing to check
                if int(info.get("cluster_enabled", 0)) == 1:
                    raise ConfigurationError(
                        f"Valkey at {self.settings.label} is a cluster node "
                        "(INFO: cluster_enabled:1): add ?cluster=true to the URL "
                        "(or pass cluster=True) so the providers use a cluster client"
                    )
        except BaseException:
            close_client(client)
            raise
        return client

    async def open(self) -> None:
        """Connect and check the server answers (with the credentials given)."""
        try:
            self._client = await trio.to_thread.run_sync(self._connect, limiter=self.limiter)
        except DRIVER_ERRORS as exc:
            raise translate(exc, self.settings, "connecting") from None

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(close_client, client)

    async def run(self, fn: Callable[[Client], _T], doing: str, *, abandon: bool = False) -> _T:
        """``fn(client)`` in a worker thread; driver errors become wfe errors.

        ``abandon``: a cancelled caller returns at once and the thread finishes alone
        (only for calls that change nothing, such as a blocking wait)."""
        client = self.client
        try:
            result = await trio.to_thread.run_sync(
                fn, client, limiter=self.limiter, abandon_on_cancel=abandon
            )
        except DRIVER_ERRORS as exc:
            error = translate(exc, self.settings, doing)
            if is_connection_error(exc):
                self._note(error)
            raise error from exc
        if self._down_since is not None:
            self._note(None)
        return result
