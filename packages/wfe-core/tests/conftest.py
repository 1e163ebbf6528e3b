"""Shared fixtures of wfe-core's tests."""

import pytest

# Before anything imports the suites: their asserts then explain failures in detail.
pytest.register_assert_rewrite("wfe.core.testing")
