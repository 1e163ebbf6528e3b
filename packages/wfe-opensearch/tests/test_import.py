"""The distribution installs and imports even before it has providers."""

import importlib


def test_imports_and_exports_nothing_yet() -> None:
    module = importlib.import_module("wfe.opensearch")
    assert module.__all__ == []
    assert "not implemented yet" in (module.__doc__ or "")
