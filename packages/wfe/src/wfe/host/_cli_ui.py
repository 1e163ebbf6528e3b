"""``wfe ui``: the web dashboard on a store, served until Ctrl-C/SIGTERM.

The process runs no workflow (workers do): it reads the store, follows changes, and,
with ``--allow-actions``, suspends, resumes, terminates and publishes events. The
definitions remembered next to the store give the instance pages their graphs.
"""

from __future__ import annotations

import os
import signal
import sys

import trio

from wfe.core import WfeError
from wfe.core.serialization import opaque_types

from ._cli_codes import EXIT_OK, EXIT_USAGE
from ._cli_setup import CliError, Loaded, Store, builder_for, store_error

TOKEN_ENV = "WFE_UI_TOKEN"
"""The access token for actions, instead of a new one printed at start-up."""


def _ui_module() -> object:
    try:
        import hypercorn  # noqa: F401
        import starlette  # noqa: F401

        from . import ui
    except ImportError as exc:
        from wfe.core.installation import install_command

        raise CliError(
            f"wfe ui needs the ui extra ({exc.name} is missing): " + install_command("wfe[ui]")
        ) from exc
    return ui


async def _until_signal(cancel: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            cancel.cancel()
            return


async def ui(
    store: Store,
    loaded: Loaded,
    *,
    bind_host: str,
    port: int,
    allow_actions: bool,
    token: str | None,
) -> int:
    """Serve the dashboard of ``store`` on ``bind_host:port``."""
    module = _ui_module()
    from .ui import new_token, serve_ui
    from .ui._serve import is_loopback

    del module
    if not 0 <= port <= 65535:
        raise CliError(f"--port {port}: expected 0-65535", EXIT_USAGE)
    if token is None:
        token = os.environ.get(TOKEN_ENV) or None
    if allow_actions and token is None:
        token = new_token()
    if not is_loopback(bind_host):
        print(
            f"wfe: warning: --host {bind_host} serves the dashboard beyond this machine; "
            "anyone who reaches it can read every workflow's data",
            file=sys.stderr,
        )
    builder = builder_for(store).run_workflows(False)
    loaded.register_on(builder)
    host = builder.build()
    with opaque_types():
        try:
            await host.__aenter__()
        except WfeError as exc:
            err = store_error(exc, store)
            if err is None:
                raise
            raise err from exc
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_until_signal, nursery.cancel_scope)
                urls = await nursery.start(
                    lambda task_status: serve_ui(
                        host,
                        bind_host=bind_host,
                        port=port,
                        allow_actions=allow_actions,
                        token=token,
                        store_label=store.shown,
                        task_status=task_status,
                    )
                )
                mode = "actions allowed" if allow_actions else "read-only"
                print(f"[wfe] ui serving {store.shown} at {urls[0]} ({mode}); Ctrl-C to stop")
                if allow_actions:
                    print(f"[wfe] access token for actions: {token}")
                sys.stdout.flush()
        finally:
            await host.__aexit__(None, None, None)
    print("[wfe] ui stopped")
    return EXIT_OK
