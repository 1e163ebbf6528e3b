"""What the Valkey providers share: settings, the ``async with`` protocol, the key prefix."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from ._changes import ChangeFeed
from ._connection import Server, parse_url


class ValkeyProvider(ChangeFeed):
    """Base of the lock, queue and lifecycle providers: entering connects (and checks the
    server answers with the credentials given); leaving closes the pool.

    ``cluster=True`` (or ``?cluster=true``) talks to a Valkey/Redis Cluster; the
    ``ssl_*`` keywords (or URL parameters) configure TLS for ``valkeys://`` URLs."""

    def __init__(
        self,
        url: str = "valkey://127.0.0.1:6379/0",
        *,
        prefix: str | None = None,
        pool_size: int | None = None,
        socket_timeout: float | None = None,
        socket_connect_timeout: float | None = None,
        cluster: bool | None = None,
        ssl_ca_certs: str | None = None,
        ssl_ca_path: str | None = None,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        ssl_cert_reqs: str | None = None,
        ssl_check_hostname: bool | None = None,
    ) -> None:
        self._depth = 0
        self._server = Server(
            parse_url(
                url,
                prefix=prefix,
                pool_size=pool_size,
                socket_timeout=socket_timeout,
                socket_connect_timeout=socket_connect_timeout,
                cluster=cluster,
                ssl_ca_certs=ssl_ca_certs,
                ssl_ca_path=ssl_ca_path,
                ssl_certfile=ssl_certfile,
                ssl_keyfile=ssl_keyfile,
                ssl_cert_reqs=ssl_cert_reqs,
                ssl_check_hostname=ssl_check_hostname,
            )
        )

    @property
    def prefix(self) -> str:
        """The prefix of every key and channel this provider uses."""
        return self._server.settings.prefix

    @property
    def url(self) -> str:
        """The server's URL with its password masked."""
        return self._server.settings.label

    def key(self, *parts: str) -> str:
        """The full key name for ``parts`` under this provider's prefix."""
        return self.prefix + ":".join(parts)

    async def __aenter__(self) -> Self:
        # Nested entries (a publisher entered by its owner and again by the host it was
        # given to) share one connection: only the outermost opens and closes it.
        if self._depth == 0:
            await self._server.open()
            await self._opened()
        self._depth += 1
        return self

    async def _opened(self) -> None:
        """Hook for subclasses: runs once connected."""

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._depth -= 1
        if self._depth == 0:
            await self._server.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r}, prefix={self.prefix!r})"
