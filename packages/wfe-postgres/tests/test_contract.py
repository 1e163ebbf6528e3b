"""The shared provider contract suites against the real PostgreSQL server, each test in
its own schema; the lock, queue and search index are companions of the persistence
provider, sharing its pool."""

from __future__ import annotations

import pytest

from wfe.core.testing import (
    BatchPersistenceContract,
    BatchQueueContract,
    IndexingPersistenceContract,
    LeasingDeliveryContract,
    LeasingPersistenceContract,
    LockContract,
    PendingSubscriptionsContract,
    ReleasingCheckpointContract,
    SearchContract,
    StepLogContract,
)
from wfe.postgres import PostgresPersistenceProvider


class TestPostgresPersistenceContract(
    BatchPersistenceContract,
    IndexingPersistenceContract,
    LeasingDeliveryContract,
    ReleasingCheckpointContract,
    LeasingPersistenceContract,
    PendingSubscriptionsContract,
):
    pass


class TestPostgresLockContract(LockContract):
    pass


class TestPostgresQueueContract(BatchQueueContract):
    visibility_timeout = 0.5


class TestPostgresSearchContract(SearchContract):
    pass


class TestPostgresStepLogContract(StepLogContract):
    @pytest.fixture
    def step_logs(self, persistence: PostgresPersistenceProvider) -> PostgresPersistenceProvider:
        return persistence
