"""Shared pieces of the property tests: hypothesis profiles, the bridge from hypothesis's
synchronous rules into the trio loop, comparison of provider results, and the stores.

A stateful machine's rules are synchronous, but providers are trio objects bound to one
run. The test (a trio test) runs the machine in a worker thread, and every rule calls
into the test's trio loop with :func:`call` (``trio.from_thread.run``), so providers stay
open across the rules of one example.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import attrs
import pytest
import trio
from hypothesis import HealthCheck, settings

from wfe.core import WfeError
from wfe.core.serialization import dumps

from . import pg_support

T = TypeVar("T")

# Locally each run explores new examples; under CI (``CI`` set) the examples are derived
# from the test alone (derandomize), so a run never fails on an example the previous one
# did not try.
settings.register_profile(
    "wfe-props",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile("wfe-props-ci", settings.get_profile("wfe-props"), derandomize=True)
PROFILE = settings.get_profile("wfe-props-ci" if os.environ.get("CI") else "wfe-props")


def call(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run ``await fn(*args)`` in the test's trio loop from the machine's thread."""
    return trio.from_thread.run(fn, *args)


# -- comparing results -------------------------------------------------------------------

# Fields of the models holding open-ended values: compared as their stored JSON text, so
# a Decimal's exponent, a tuple-vs-list or a datetime's offset inside data must survive.
_BLOBS = frozenset(
    {"data", "persistence_data", "event_data", "context_item", "outcome", "extension"}
)


def canon(value: Any) -> Any:
    """A comparable form of a provider result.

    Normalisation, each one a difference the protocol allows:
    - datetimes of the model's own fields are compared as UTC instants: stores keep time as
      microseconds since the epoch and hand back UTC, whatever offset was written
      (the values generated here have microsecond precision, so nothing is rounded);
    - open-ended values (``data``, pointer blobs) are compared as :func:`dumps` text, which
      is exact (nothing is normalised inside them).
    """
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo is not None else ("naive", value)
    if isinstance(value, list | tuple):
        return [canon(v) for v in value]
    if isinstance(value, dict):
        return {k: canon(v) for k, v in value.items()}
    if attrs.has(type(value)):
        fields = {}
        for f in attrs.fields(type(value)):
            v = getattr(value, f.name)
            fields[f.name] = dumps(v) if f.name in _BLOBS else canon(v)
        return (type(value).__name__, fields)
    return value


@attrs.frozen
class Raised:
    """An outcome that was an exception, by kind."""

    kind: str


def outcome_of(fn: Callable[[], T], kinds: tuple[type[BaseException], ...]) -> Any:
    """``fn()``'s result, or :class:`Raised` naming the first of ``kinds`` it raised.

    ``kinds`` lists the exception classes the protocol names, most specific first; a
    provider may raise any subclass of the one it names (``WfeError`` for a missing event).
    Anything else propagates: it is a failure of the test."""
    try:
        return fn()
    except kinds as exc:
        for kind in kinds:
            if isinstance(exc, kind):
                return Raised(kind.__name__)
        raise  # pragma: no cover - unreachable: exc is one of kinds


def first_differing(model: Any, got: Any) -> str:
    """A short explanation of where two canonical results differ."""

    def walk(a: Any, b: Any, path: str) -> str | None:
        if type(a) is not type(b):
            return f"{path}: {a!r} != {b!r}"
        if isinstance(a, dict):
            for k in sorted(set(a) | set(b), key=str):
                if k not in a or k not in b:
                    return f"{path}.{k}: present in only one"
                found = walk(a[k], b[k], f"{path}.{k}")
                if found:
                    return found
            return None
        if isinstance(a, list | tuple):
            if len(a) != len(b):
                return f"{path}: length {len(a)} != {len(b)}: {a!r} != {b!r}"
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                found = walk(x, y, f"{path}[{i}]")
                if found:
                    return found
            return None
        return None if a == b else f"{path}: {a!r} != {b!r}"

    return walk(model, got, "result") or "equal"


def same(what: str, name: str, model: Any, got: Any) -> None:
    """Assert that provider ``name``'s result equals the model's."""
    a, b = canon(model), canon(got)
    assert a == b, (
        f"{what}: {name} differs from memory at {first_differing(a, b)}\n"
        f"memory: {_short(model)}\n{name}: {_short(got)}"
    )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 600 else text[:600] + "..."


def same_ranked(
    what: str, name: str, model: list[str], got: list[str], key: Callable[[str], Any]
) -> None:
    """Compare id lists whose order is specified only by ``key`` (ties: any order, and
    with a limit any of the tied ids may fill the last places): the keys must come in the
    same order, and ids with a key below the last one must be the same set."""
    assert [key(i) for i in got] == [key(i) for i in model], (
        f"{what}: {name} returned {got} (keys {[key(i) for i in got]}), memory {model} "
        f"(keys {[key(i) for i in model]})"
    )
    if model:
        last = key(model[-1])
        below = {i for i in model if key(i) != last}
        assert below <= set(got), f"{what}: {name} returned {got}, memory {model}"
        assert len(set(got)) == len(got), f"{what}: {name} repeated an id: {got}"


def protocol_errors() -> tuple[type[BaseException], ...]:
    """The exception kinds the persistence protocol names, most specific first."""
    from wfe.core import (
        ConfigurationError,
        DataSerializationError,
        ProviderError,
        StaleLeaseError,
        WorkflowNotFoundError,
    )

    return (
        StaleLeaseError,
        WorkflowNotFoundError,
        DataSerializationError,
        ConfigurationError,
        ProviderError,
        WfeError,
    )


# -- stores -----------------------------------------------------------------------------


def postgres_available() -> bool:
    """Whether the PostgreSQL store is installed and its server answers (else: skip or
    fail, as ``pg_support.require_server`` decides, when required)."""
    if not pg_support.INSTALLED:
        return False
    try:
        pg_support.require_server()
    except pytest.skip.Exception:
        return False  # the other stores still run; a required server fails instead
    return True


def new_schema() -> str:
    """A fresh schema name (the provider creates it; :func:`pg_support.drop_schema`)."""
    return f"p_{secrets.token_hex(6)}"
