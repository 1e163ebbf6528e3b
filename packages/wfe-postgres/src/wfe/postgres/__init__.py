"""wfe.postgres: persistence, lock, queue and full-text search for wfe on PostgreSQL.

``postgresql://user:password@host:5432/database?schema=wfe`` (or ``postgres://``). The
persistence provider hands out the other three as companions sharing its connection
pool (:class:`~wfe.core.protocols.ProvidesCompanions`), and is a
:class:`~wfe.core.protocols.WorkflowChangeFeed` over LISTEN/NOTIFY.
"""

from ._lock import PostgresLockProvider as PostgresLockProvider
from ._persistence import PostgresPersistenceProvider as PostgresPersistenceProvider
from ._queue import PostgresQueueProvider as PostgresQueueProvider
from ._schema import SCHEMA_VERSION as SCHEMA_VERSION
from ._search import PostgresSearchIndex as PostgresSearchIndex

__all__ = [
    "SCHEMA_VERSION",
    "PostgresLockProvider",
    "PostgresPersistenceProvider",
    "PostgresQueueProvider",
    "PostgresSearchIndex",
]
