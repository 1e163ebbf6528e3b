"""The lock and queue providers pass wfe-core's contract suites on Redis 7 and Valkey."""

from __future__ import annotations

from wfe.core.testing import LockContract, QueueContract


class TestValkeyLocks(LockContract):
    pass


class TestValkeyQueues(QueueContract):
    pass
