"""The shared provider contract suites, on a file database and on ``:memory:``.

Fixtures come from ``conftest.py``: each runs once with a file in ``tmp_path`` and
once with ``sqlite://:memory:``, where the lock, queue and search index are companions
of the persistence provider sharing its single database.
"""

from __future__ import annotations

import pytest

from wfe.core.testing import (
    BatchPersistenceContract,
    BatchQueueContract,
    IndexingPersistenceContract,
    LeasingDeliveryContract,
    LeasingPersistenceContract,
    LockContract,
    PendingInCheckpointsContract,
    PendingSubscriptionsContract,
    ReleasingCheckpointContract,
    SearchContract,
    StepLogContract,
)
from wfe.sqlite import SqlitePersistenceProvider


class TestSqlitePersistenceContract(
    BatchPersistenceContract,
    IndexingPersistenceContract,
    LeasingDeliveryContract,
    ReleasingCheckpointContract,
    LeasingPersistenceContract,
    PendingSubscriptionsContract,
    PendingInCheckpointsContract,
):
    pass


class TestSqliteLockContract(LockContract):
    pass


class TestSqliteQueueContract(BatchQueueContract):
    visibility_timeout = 0.5


class TestSqliteSearchContract(SearchContract):
    pass


class TestSqliteStepLogContract(StepLogContract):
    @pytest.fixture
    def step_logs(self, persistence: SqlitePersistenceProvider) -> SqlitePersistenceProvider:
        return persistence
