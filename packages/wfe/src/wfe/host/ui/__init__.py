"""wfe.host.ui: the web dashboard (``wfe ui``), an ASGI app served on trio.

Install with the ``wfe[ui]`` extra. ``create_app(host)`` gives the app for a running
:class:`~wfe.host.WorkflowHost` (to mount in your own trio ASGI server);
``serve_ui(host)`` serves it with hypercorn on 127.0.0.1:8042.
"""

from ._app import create_app as create_app
from ._security import new_token as new_token
from ._serve import serve_ui as serve_ui

__all__ = ["create_app", "new_token", "serve_ui"]
