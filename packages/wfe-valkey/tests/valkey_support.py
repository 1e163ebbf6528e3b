"""Helpers shared by this package's tests (imported by path: pytest's importlib mode
does not put tests/ on sys.path)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A loopback port nothing listens on (bound and released at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
