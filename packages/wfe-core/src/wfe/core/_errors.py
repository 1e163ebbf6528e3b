"""The wfe exception tree.

Everything wfe raises on purpose derives from :class:`WfeError`::

    WfeError
    ├── ConfigurationError          a host or provider is set up wrongly
    │   └── ProviderNotFoundError   no installed provider for a URL scheme
    ├── DefinitionError             a workflow definition is malformed
    │   ├── DefinitionNotFoundError no definition registered under an id/version
    │   └── DefinitionDriftError    an instance's step graph differs from the registered one
    ├── DataSerializationError      workflow data cannot be stored (names the field path)
    ├── WorkflowNotFoundError       no workflow instance with that id
    ├── ProviderError               a store, lock or queue failed (wraps the driver's error)
    │   ├── StaleLeaseError         a write was refused because its lease was lost
    │   └── StoreLostError          the store is no longer the one opened (fatal to a host)
    ├── StepError                   a step body failed (the executor records it)
    └── WorkflowTimeoutError        waiting for a workflow took longer than allowed

Provider errors wrap the driver's exception with ``raise ... from exc``.
"""

from __future__ import annotations


class WfeError(Exception):
    """Base class of every error wfe raises deliberately."""


class ConfigurationError(WfeError):
    """A host, builder or provider was configured wrongly."""


class ProviderNotFoundError(ConfigurationError):
    """No installed provider handles the requested URL scheme."""


class DefinitionError(WfeError):
    """A workflow definition is malformed."""


class DefinitionNotFoundError(DefinitionError):
    """No definition is registered under the requested id and version."""


class DefinitionDriftError(DefinitionError):
    """An instance was started under a different step graph than the registered one."""


class DataSerializationError(WfeError):
    """Workflow data holds a value that cannot be stored; ``path`` names it."""

    def __init__(self, message: str, path: str = "data") -> None:
        super().__init__(message)
        self.path = path


class WorkflowNotFoundError(WfeError):
    """No workflow instance exists with the requested id."""


class ProviderError(WfeError):
    """A persistence, lock, queue or search provider failed."""


class StaleLeaseError(ProviderError):
    """A write was refused: the writer's lease was lost to a newer holder."""


class StoreLostError(ProviderError):
    """The store under a running provider is gone or was replaced (a SQLite file deleted
    or swapped for another): nothing more can be written where it was opened. Unlike
    other provider errors this is not retried: a host stops with it."""


class StepError(WfeError):
    """A step body failed; raised by step implementations to report a clean message."""


class WorkflowTimeoutError(WfeError, TimeoutError):
    """A wait for a workflow exceeded its timeout."""
