"""What every PostgreSQL provider shares: a :class:`Database` and ``async with``."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

from ._database import Database
from ._settings import parse


def open_database(url: str, **options: Any) -> Database:
    """A (not yet opened) :class:`Database` for ``url``; raises ``ConfigurationError``
    for a malformed URL or option."""
    return Database(parse(url, **options))


class PostgresProvider:
    """Base of the four providers: entering connects (and migrates) unless another
    provider sharing the database already did; leaving closes after the last one."""

    _db: Database

    @property
    def schema(self) -> str:
        """The PostgreSQL schema holding this store's tables."""
        return self._db.schema

    @property
    def label(self) -> str:
        """Host, port, database, user and schema, without the password."""
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
