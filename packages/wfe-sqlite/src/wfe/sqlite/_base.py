"""What every SQLite provider shares: a :class:`Database` and the ``async with`` protocol."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from ._database import Database, parse_url


def open_database(
    url: str,
    *,
    synchronous: str = "NORMAL",
    busy_timeout: float = 5.0,
    create_parents: bool = False,
    visibility_timeout: float = 30.0,
    poll_interval: float = 0.05,
) -> Database:
    """A (not yet opened) :class:`Database` for ``url``; raises ``ConfigurationError``
    for a malformed URL or option."""
    return Database(
        parse_url(url),
        synchronous=synchronous,
        busy_timeout=busy_timeout,
        create_parents=create_parents,
        visibility_timeout=visibility_timeout,
        poll_interval=poll_interval,
    )


class SqliteProvider:
    """Base of the four providers: entering opens (and migrates) the database unless
    another provider sharing it already did; leaving closes it after the last one."""

    _db: Database

    @property
    def path(self) -> str:
        """The database file's absolute path, or ``":memory:"``."""
        return self._db.label

    def _share(self, db: Database) -> None:
        self._db = db

    @classmethod
    def _sharing(cls, db: Database) -> Self:
        """A provider over an existing database (a companion), not yet entered."""
        provider = cls.__new__(cls)
        provider._share(db)
        return provider

    async def __aenter__(self) -> Self:
        await self._db.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._db.release()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._db.label!r})"
