"""Serving the dashboard on trio with hypercorn."""

from __future__ import annotations

import ipaddress
import logging
from typing import TYPE_CHECKING

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from ._app import create_app

if TYPE_CHECKING:
    from .._host import WorkflowHost

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8042


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str) -> list[str] | None:
    """The ``Host`` names a dashboard bound to ``host`` answers: on loopback, only the
    loopback names (a DNS-rebinding page's name is refused); elsewhere any."""
    if not is_loopback(host):
        return None
    return ["localhost", "127.0.0.1", "[::1]", host if ":" not in host else f"[{host}]"]


async def serve_ui(
    host: WorkflowHost,
    *,
    bind_host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    allow_actions: bool = False,
    token: str | None = None,
    store_label: str | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the dashboard of a running ``host`` on ``bind_host:port`` until cancelled;
    ``task_status.started`` gets the bound URLs (``port=0`` picks a free port)."""
    config = Config()
    where = f"[{bind_host}]" if ":" in bind_host else bind_host
    config.bind = [f"{where}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("wfe.host.ui")
    config.graceful_timeout = 1.0
    app = create_app(
        host,
        allow_actions=allow_actions,
        token=token,
        store_label=store_label,
        allowed_hosts=allowed_hosts(bind_host),
    )
    await serve(app, config, task_status=task_status, mode="asgi")
