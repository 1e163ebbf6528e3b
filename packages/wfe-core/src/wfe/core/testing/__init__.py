"""Contract suites for provider implementations, and helpers to build sample state.

Each suite is a pytest base class (its name does not start with ``Test``, so it is not
collected on its own). A provider package runs it by subclassing and supplying the
fixture the suite names::

    class TestSqlitePersistence(PersistenceContract):
        @pytest.fixture
        async def persistence(self) -> AsyncIterator[SqlitePersistenceProvider]:
            async with SqlitePersistenceProvider("sqlite://:memory:") as store:
                yield store

Fixtures: ``persistence`` (:class:`PersistenceContract`), ``locks``
(:class:`LockContract`), ``queues`` (:class:`QueueContract`; its visibility timeout
must be the class attribute ``visibility_timeout``) and ``search_index``
(:class:`SearchContract`), ``step_logs`` (:class:`StepLogContract`, for stores with
the optional step-log capability). For detailed assertion messages, call
``pytest.register_assert_rewrite("wfe.core.testing")`` at the top of ``conftest.py``.
This module does not import pytest.
"""

from ._claiming_contract import ClaimingDeliveryContract as ClaimingDeliveryContract
from ._indexing_contract import IndexingPersistenceContract as IndexingPersistenceContract
from ._leasing_contract import LeasingPersistenceContract as LeasingPersistenceContract
from ._leasing_delivery_contract import LeasingDeliveryContract as LeasingDeliveryContract
from ._lock_contract import LockContract as LockContract
from ._pending_contract import PendingInCheckpointsContract as PendingInCheckpointsContract
from ._pending_contract import PendingSubscriptionsContract as PendingSubscriptionsContract
from ._persistence_contract import BatchPersistenceContract as BatchPersistenceContract
from ._persistence_contract import PersistenceContract as PersistenceContract
from ._queue_contract import BatchQueueContract as BatchQueueContract
from ._queue_contract import QueueContract as QueueContract
from ._releasing_contract import ReleasingCheckpointContract as ReleasingCheckpointContract
from ._samples import T0 as T0
from ._samples import SampleColor as SampleColor
from ._samples import SampleData as SampleData
from ._samples import SampleLine as SampleLine
from ._samples import SampleTagged as SampleTagged
from ._samples import expect_raises as expect_raises
from ._samples import make_instance as make_instance
from ._samples import make_pointer as make_pointer
from ._samples import unique_word as unique_word
from ._search_contract import SearchContract as SearchContract
from ._step_log_contract import StepLogContract as StepLogContract

__all__ = [
    "T0",
    "BatchPersistenceContract",
    "BatchQueueContract",
    "ClaimingDeliveryContract",
    "IndexingPersistenceContract",
    "LeasingDeliveryContract",
    "LeasingPersistenceContract",
    "LockContract",
    "PendingInCheckpointsContract",
    "PendingSubscriptionsContract",
    "PersistenceContract",
    "QueueContract",
    "ReleasingCheckpointContract",
    "SampleColor",
    "SampleData",
    "SampleLine",
    "SampleTagged",
    "SearchContract",
    "StepLogContract",
    "expect_raises",
    "make_instance",
    "make_pointer",
    "unique_word",
]
