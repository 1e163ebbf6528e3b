"""The shared provider contract suites against the real PostgreSQL server, each test in
its own schema; the lock, queue and search index are companions of the persistence
provider, sharing its pool."""

from __future__ import annotations

from wfe.core.testing import LockContract, PersistenceContract, QueueContract, SearchContract


class TestPostgresPersistenceContract(PersistenceContract):
    pass


class TestPostgresLockContract(LockContract):
    pass


class TestPostgresQueueContract(QueueContract):
    visibility_timeout = 0.5


class TestPostgresSearchContract(SearchContract):
    pass
