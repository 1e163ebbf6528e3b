"""wfe.valkey: distributed lock, work queue and lifecycle pub/sub on Valkey or Redis.

URLs ``valkey://[user:password@]host[:port][/db][?prefix=app:]`` (``valkeys://`` for
TLS, with ``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``, ``ssl_cert_reqs``,
``ssl_check_hostname``; ``redis://`` and ``rediss://`` are the same; ``?cluster=true``
for a Valkey Cluster, where the prefix becomes a hash tag). Every key and channel
starts with the prefix (default ``wfe:``). The lock and queue providers also publish
status changes and watch them (:class:`~wfe.core.protocols.WorkflowChangeFeed`), so a
host configured with either wakes ``wait_for_workflow`` for workflows that other hosts
finish, within milliseconds.
"""

from ._lock import ValkeyLockProvider as ValkeyLockProvider
from ._publisher import ValkeyLifecyclePublisher as ValkeyLifecyclePublisher
from ._publisher import event_json as event_json
from ._queue import ValkeyQueueProvider as ValkeyQueueProvider

__all__ = [
    "ValkeyLifecyclePublisher",
    "ValkeyLockProvider",
    "ValkeyQueueProvider",
    "event_json",
]
