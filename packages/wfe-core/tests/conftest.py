"""Shared fixtures of wfe-core's tests."""

import sys
from pathlib import Path

import pytest

# Before anything imports the suites: their asserts then explain failures in detail.
pytest.register_assert_rewrite("wfe.core.testing")

# The engine driver and the data classes live in sibling modules, importable by name
# (pytest's importlib mode does not put tests/ on sys.path; stored attrs data must be
# importable to be loaded again).
sys.path.insert(0, str(Path(__file__).parent))

from core_engine import Engine, RecordingPersistence  # noqa: E402


@pytest.fixture
def store() -> RecordingPersistence:
    """A fresh memory store that records every checkpoint written to it."""
    return RecordingPersistence()


@pytest.fixture
def engine(store: RecordingPersistence) -> Engine:
    """The test host over ``store``. Its tests also request ``autojump_clock``: pytest-trio
    runs a test on a clock only when the test itself takes it."""
    return Engine(store)
