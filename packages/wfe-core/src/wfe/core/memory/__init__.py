"""In-memory providers: complete reference implementations of the provider protocols.

They keep state in the process (lost when it exits), meet every guarantee of
:mod:`wfe.core.protocols`, and run the contract suites of :mod:`wfe.core.testing`.
Each class doubles as an entry-point factory for the ``memory`` URL scheme through its
``from_url(url, **options)`` classmethod.
"""

from ._lifecycle import MemoryLifecycleEventPublisher as MemoryLifecycleEventPublisher
from ._locks import MemoryLockProvider as MemoryLockProvider
from ._persistence import MemoryPersistenceProvider as MemoryPersistenceProvider
from ._queue import MemoryQueueProvider as MemoryQueueProvider
from ._search import MemorySearchIndex as MemorySearchIndex

__all__ = [
    "MemoryLifecycleEventPublisher",
    "MemoryLockProvider",
    "MemoryPersistenceProvider",
    "MemoryQueueProvider",
    "MemorySearchIndex",
]
