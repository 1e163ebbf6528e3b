"""wfe.sqlite: persistence, lock, queue and FTS5 search for wfe in one SQLite file.

``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` or
``sqlite://:memory:``. The persistence provider hands out the other three as
companions sharing its database (:class:`~wfe.core.protocols.ProvidesCompanions`).
"""

from ._lock import SqliteLockProvider as SqliteLockProvider
from ._persistence import SqlitePersistenceProvider as SqlitePersistenceProvider
from ._queue import SqliteQueueProvider as SqliteQueueProvider
from ._schema import SCHEMA_VERSION as SCHEMA_VERSION
from ._search import SqliteSearchIndex as SqliteSearchIndex

__all__ = [
    "SCHEMA_VERSION",
    "SqliteLockProvider",
    "SqlitePersistenceProvider",
    "SqliteQueueProvider",
    "SqliteSearchIndex",
]
