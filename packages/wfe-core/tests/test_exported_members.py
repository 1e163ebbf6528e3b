"""Pin the public names, so API changes show up in review."""

from __future__ import annotations

import wfe.core
import wfe.core.discovery
import wfe.core.memory
import wfe.core.protocols
import wfe.core.testing

CORE_SUBSET = [
    "Clock",
    "ConfigurationError",
    "DataSerializationError",
    "DefinitionDriftError",
    "DefinitionError",
    "DefinitionNotFoundError",
    "ErrorBehavior",
    "Event",
    "EventSubscription",
    "ExecutionError",
    "ExecutionPointer",
    "ExecutionResult",
    "LifecycleEvent",
    "PointerStatus",
    "ProviderError",
    "ProviderNotFoundError",
    "ScheduledCommand",
    "StaleLeaseError",
    "StepBody",
    "StepCompleted",
    "StepError",
    "StepExecutionContext",
    "StepStarted",
    "StoreLostError",
    "SystemClock",
    "TrioClock",
    "WfeError",
    "WorkflowCompleted",
    "WorkflowDefinition",
    "WorkflowError",
    "WorkflowInstance",
    "WorkflowNotFoundError",
    "WorkflowResumed",
    "WorkflowStarted",
    "WorkflowStatus",
    "WorkflowStep",
    "WorkflowSuspended",
    "WorkflowTerminated",
    "redact_url",
]


def _public(module: object) -> list[str]:
    return sorted(n for n in dir(module) if not n.startswith("_"))


def test_core_exports_at_least_the_model_and_error_names() -> None:
    missing = sorted(set(CORE_SUBSET) - set(wfe.core.__all__))
    assert missing == []
    assert all(hasattr(wfe.core, name) for name in wfe.core.__all__)


def test_memory_exports() -> None:
    assert sorted(wfe.core.memory.__all__) == [
        "MemoryLifecycleEventPublisher",
        "MemoryLockProvider",
        "MemoryPersistenceProvider",
        "MemoryQueueProvider",
        "MemorySearchIndex",
    ]
    assert [n for n in _public(wfe.core.memory) if n[0].isupper()] == sorted(
        wfe.core.memory.__all__
    )


def test_protocols_exports() -> None:
    assert sorted(wfe.core.protocols.__all__) == [
        "AsyncProvider",
        "BatchPersistence",
        "BatchQueue",
        "BulkSearchIndex",
        "Checkpoint",
        "ClaimingDelivery",
        "DataFilter",
        "DistributedLockProvider",
        "EventDelivery",
        "IndexingPersistence",
        "Lease",
        "LeasingDelivery",
        "LeasingPersistence",
        "LifecycleEventPublisher",
        "Page",
        "PendingInCheckpoints",
        "PendingSubscriptions",
        "PersistenceProvider",
        "ProvidesCompanions",
        "QueueItem",
        "QueueKind",
        "QueueProvider",
        "ReleasingCheckpoint",
        "SearchFilters",
        "SearchIndex",
        "SearchResult",
        "StepLogLine",
        "StepLogStore",
        "WorkflowChangeFeed",
        "check_purge_statuses",
    ]


def test_testing_exports() -> None:
    expected = [
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
        "T0",
        "expect_raises",
        "make_instance",
        "make_pointer",
        "unique_word",
    ]
    assert sorted(wfe.core.testing.__all__) == expected
    assert [n for n in _public(wfe.core.testing) if n in expected or n[0].isupper()] == expected


def test_testing_does_not_need_pytest() -> None:
    """Provider packages may import the suites without pytest installed."""
    import ast
    from pathlib import Path

    folder = Path(wfe.core.testing.__file__).parent
    for source in folder.glob("*.py"):
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                module = getattr(node, "module", None) or ""
                assert "pytest" not in names, source
                assert not module.startswith("pytest"), source


def test_discovery_exports() -> None:
    assert sorted(wfe.core.discovery.__all__) == [
        "DISTRIBUTIONS",
        "EXPECTED_PROTOCOLS",
        "clear_cache",
        "installed_schemes",
        "load_entry_point",
        "load_provider",
        "scheme_of",
    ]


def test_executor_exports() -> None:
    """The host's seam into the executor (``wfe.core.executor``)."""
    import wfe.core.executor

    assert sorted(wfe.core.executor.__all__) == [
        "Command",
        "DEFAULT_ERROR_BEHAVIOR",
        "EVERY_EVENT",
        "ExecutorEnv",
        "InstanceRun",
        "LogSink",
        "StepMiddleware",
        "as_utc",
        "error_records",
        "get_tracer",
    ]


def test_serialization_is_public() -> None:
    import wfe.core.serialization as codec

    for name in ("dumps", "loads", "restore", "to_jsonable", "from_jsonable", "TAG"):
        assert hasattr(codec, name), name
