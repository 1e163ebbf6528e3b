"""Helpers shared by this package's tests (imported by path: pytest's importlib mode
does not put tests/ on sys.path)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A loopback port nothing listens on (bound and released at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unavailable(message: str) -> None:
    """Skip the test for a missing service, or fail it when ``WFE_REQUIRE_SERVICES``
    names ``valkey``."""
    import os

    import pytest

    names = {n.strip() for n in os.environ.get("WFE_REQUIRE_SERVICES", "").split(",")}
    if "valkey" in names:
        pytest.fail(f"{message} (WFE_REQUIRE_SERVICES names valkey)")
    pytest.skip(message)
