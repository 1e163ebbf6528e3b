"""The public surface of wfe.valkey and its entry points are pinned."""

from __future__ import annotations

import pytest

import wfe.valkey
from wfe.core.discovery import load_provider
from wfe.core.protocols import (
    DistributedLockProvider,
    LifecycleEventPublisher,
    QueueProvider,
    WorkflowChangeFeed,
)
from wfe.valkey import ValkeyLifecyclePublisher, ValkeyLockProvider, ValkeyQueueProvider


def test_public_names() -> None:
    assert sorted(wfe.valkey.__all__) == [
        "ValkeyLifecyclePublisher",
        "ValkeyLockProvider",
        "ValkeyQueueProvider",
        "event_json",
    ]


@pytest.mark.parametrize("scheme", ["valkey", "valkeys", "redis", "rediss"])
def test_entry_points_build_each_provider(scheme: str) -> None:
    url = f"{scheme}://127.0.0.1:6379/0?prefix=app:"
    locks = load_provider("wfe.locks", url)
    queues = load_provider("wfe.queues", url)
    assert isinstance(locks, ValkeyLockProvider)
    assert isinstance(queues, ValkeyQueueProvider)
    assert isinstance(locks, DistributedLockProvider)
    assert isinstance(queues, QueueProvider)
    assert locks.prefix == queues.prefix == "app:"


def test_every_provider_is_a_change_feed_and_a_publisher() -> None:
    for cls in (ValkeyLockProvider, ValkeyQueueProvider, ValkeyLifecyclePublisher):
        provider = cls("valkey://127.0.0.1:6379/0")
        assert isinstance(provider, WorkflowChangeFeed)
        assert isinstance(provider, LifecycleEventPublisher)


def test_prefix_keyword_wins_over_the_url() -> None:
    provider = ValkeyLockProvider("valkey://h:1/2?prefix=from-url:", prefix="kw:")
    assert provider.prefix == "kw:"
    assert provider.key("lock", "r") == "kw:lock:r"
    assert ValkeyLockProvider("valkey://h:1/2").prefix == "wfe:"
