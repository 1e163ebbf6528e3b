"""The dashboard's ASGI application (Starlette): pages, JSON routes, live streams and,
when allowed, the actions."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from wfe.core import DataSerializationError, WfeError, WorkflowNotFoundError, WorkflowStatus
from wfe.core.protocols import StepLogStore

from . import _views as views
from ._graphs import graph_svg
from ._live import ChangeBroker
from ._security import SESSION_COOKIE, SecurityHeaders, Sessions, same_origin

if TYPE_CHECKING:
    from .._host import WorkflowHost

STATIC = Path(__file__).parent / "static"
FALLBACK_POLL = 1.0
"""Seconds between re-reads of a running workflow whose page is open, for changes no
notification reports (a worker in another process on a store without a change feed)."""
IDLE_POLL = 10.0
"""The same for a workflow that is not running (it changes only when resumed)."""
KEEPALIVE = 15.0
"""Seconds between SSE comments that keep idle connections open through proxies."""
ACTIONS = {"suspend", "resume", "terminate"}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class Dashboard:
    """The routes' state: the host, the live-change broker, and the sessions."""

    def __init__(
        self,
        host: WorkflowHost,
        *,
        allow_actions: bool,
        token: str | None,
        store_label: str | None,
        fallback_poll: float,
    ) -> None:
        if allow_actions and not token:
            raise ValueError("allow_actions needs a token (wfe.host.ui.new_token() makes one)")
        self.host = host
        self.allow_actions = allow_actions
        self.sessions = Sessions(token if allow_actions else None)
        self.store_label = store_label
        self.broker = ChangeBroker()
        self.fallback_poll = fallback_poll

    # -- pages --------------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-store"})

    async def instance_page(self, request: Request) -> Response:
        return FileResponse(STATIC / "instance.html", headers={"cache-control": "no-store"})

    # -- reading --------------------------------------------------------------------------

    async def session(self, request: Request) -> Response:
        csrf = self.sessions.csrf_of(request) if self.allow_actions else None
        return JSONResponse(
            {
                "allow_actions": self.allow_actions,
                "logged_in": csrf is not None,
                "csrf_token": csrf,
                "store": self.store_label,
                "statuses": [s.value for s in WorkflowStatus],
            },
            headers={"cache-control": "no-store"},
        )

    async def list_workflows(self, request: Request) -> Response:
        try:
            query = views.ListQuery.parse(
                request.query_params, request.query_params.getlist("data")
            )
            page = await views.list_page(self.host, query)
        except views.QueryError as exc:
            return _error(400, str(exc))
        except WfeError as exc:
            return _error(400, str(exc))
        return JSONResponse(page)

    async def _read(self, workflow_id: str) -> dict[str, Any] | Response:
        try:
            instance = await self.host.persistence.get_workflow(workflow_id)
        except WorkflowNotFoundError:
            return _error(404, f"no workflow {workflow_id!r} in this store")
        except DataSerializationError as exc:
            return _error(500, f"workflow {workflow_id}: unreadable data: {exc}")
        errors = await self.host.persistence.get_errors(workflow_id)
        definition = self.host.registry.get(instance.definition_id, instance.version)
        detail = views.instance_detail(instance, errors, definition)
        detail["graph_svg"] = None if definition is None else graph_svg(definition, instance)
        detail["has_logs"] = isinstance(self.host.persistence, StepLogStore)
        return detail

    async def workflow(self, request: Request) -> Response:
        found = await self._read(request.path_params["id"])
        return found if isinstance(found, Response) else JSONResponse(found)

    async def logs(self, request: Request) -> Response:
        persistence = self.host.persistence
        if not isinstance(persistence, StepLogStore):
            return JSONResponse({"lines": [], "supported": False, "more": False})
        try:
            after = int(request.query_params.get("after", "0"))
        except ValueError:
            return _error(400, "after: expected a whole number")
        lines = await persistence.read_step_logs(
            request.path_params["id"], after=after, limit=views.LOG_PAGE
        )
        return JSONResponse(
            {
                "lines": [views.log_row(x) for x in lines],
                "supported": True,
                "more": len(lines) == views.LOG_PAGE,
            }
        )

    # -- live updates ---------------------------------------------------------------------

    async def _signature(self, workflow_id: str) -> tuple[Any, ...] | None:
        try:
            instance = await self.host.persistence.get_workflow(workflow_id)
        except (WorkflowNotFoundError, DataSerializationError):
            return None
        errors = await self.host.persistence.get_errors(workflow_id)
        return views.signature(instance, len(errors))

    async def workflow_stream(self, request: Request) -> Response:
        """``change`` events whenever the workflow's page would look different."""
        workflow_id = request.path_params["id"]

        async def events() -> AsyncIterator[str]:
            seen = await self._signature(workflow_id)
            # Sent after the first look: a change from here on is reported.
            yield "retry: 2000\n\n"
            while True:
                changed = self.broker.waiter(workflow_id)
                running = seen is not None and seen[0] is WorkflowStatus.RUNNABLE
                wait = self.fallback_poll if running else IDLE_POLL
                with trio.move_on_after(min(wait, KEEPALIVE)):
                    await changed.wait()
                now = await self._signature(workflow_id)
                if now != seen:
                    seen = now
                    yield "event: change\ndata: {}\n\n"
                else:
                    yield ": idle\n\n"

        return _sse(events())

    async def list_stream(self, request: Request) -> Response:
        """``change`` events (at most every half second) when any workflow changed."""

        async def events() -> AsyncIterator[str]:
            yield "retry: 2000\n\n"
            while True:
                seen = self.broker.changes
                with trio.move_on_after(KEEPALIVE):
                    await self.broker.waiter().wait()
                if self.broker.changes != seen:
                    yield "event: change\ndata: {}\n\n"
                    await trio.sleep(0.5)  # a busy store: one refresh per half second
                else:
                    yield ": idle\n\n"

        return _sse(events())

    # -- actions --------------------------------------------------------------------------

    def _may_act(self, request: Request) -> Response | None:
        if not self.allow_actions:
            return _error(403, "this dashboard is read-only (start it with --allow-actions)")
        if not same_origin(request):
            return _error(403, "cross-origin request refused")
        why = self.sessions.authorise(request)
        return None if why is None else _error(403, why)

    async def login(self, request: Request) -> Response:
        if not self.allow_actions:
            return _error(403, "this dashboard is read-only (start it with --allow-actions)")
        if not same_origin(request):
            return _error(403, "cross-origin request refused")
        given = await _field(request, "token")
        if not isinstance(given, str) or not self.sessions.check_token(given):
            return _error(403, "wrong access token")
        self.sessions.close(request.cookies.get(SESSION_COOKIE))
        session, csrf = self.sessions.open()
        response = JSONResponse({"logged_in": True, "csrf_token": csrf})
        response.set_cookie(
            SESSION_COOKIE, session, httponly=True, samesite="strict", path="/", secure=False
        )
        return response

    async def logout(self, request: Request) -> Response:
        refused = self._may_act(request)
        if refused is not None:
            return refused
        self.sessions.close(request.cookies.get(SESSION_COOKIE))
        response = JSONResponse({"logged_in": False})
        response.delete_cookie(SESSION_COOKIE, path="/", samesite="strict", httponly=True)
        return response

    async def act(self, request: Request) -> Response:
        refused = self._may_act(request)
        if refused is not None:
            return refused
        action = request.path_params["action"]
        workflow_id = request.path_params["id"]
        if action not in ACTIONS:
            return _error(404, f"unknown action {action!r}; expected one of {sorted(ACTIONS)}")
        try:
            instance = await self.host.persistence.get_workflow(workflow_id, with_pointers=False)
        except WorkflowNotFoundError:
            return _error(404, f"no workflow {workflow_id!r} in this store")
        method: Callable[[str], Any] = getattr(self.host, f"{action}_workflow")
        done = bool(await method(workflow_id))
        self.broker.notify(workflow_id)
        if not done:
            state = instance.status.value
            return _error(409, f"cannot {action} workflow {workflow_id}: it is {state}")
        return JSONResponse({"ok": True, "action": action, "id": workflow_id})

    async def publish(self, request: Request) -> Response:
        refused = self._may_act(request)
        if refused is not None:
            return refused
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "expected a JSON body {name, key, data}")
        if not isinstance(body, dict):
            return _error(400, "expected a JSON object {name, key, data}")
        name, key = body.get("name"), body.get("key")
        if not isinstance(name, str) or not name.strip():
            return _error(400, "name: the event's name is required")
        if not isinstance(key, str | int | float) or str(key) == "":
            return _error(400, "key: the event's key is required")
        try:
            event_id = await self.host.publish_event(name.strip(), str(key), body.get("data"))
        except WfeError as exc:
            return _error(400, str(exc))
        return JSONResponse({"ok": True, "event_id": event_id})


async def _field(request: Request, name: str) -> Any:
    """A field of a JSON or form body (``None`` when absent or unreadable)."""
    kind = request.headers.get("content-type", "")
    with contextlib.suppress(ValueError, KeyError, TypeError):
        if kind.startswith("application/json"):
            data = await request.json()
            return data.get(name) if isinstance(data, dict) else None
        form = await request.form()
        return form.get(name)
    return None


def _sse(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


def create_app(
    host: WorkflowHost,
    *,
    allow_actions: bool = False,
    token: str | None = None,
    store_label: str | None = None,
    allowed_hosts: Iterable[str] | None = None,
    fallback_poll: float = FALLBACK_POLL,
) -> Any:
    """The dashboard as an ASGI app for a running ``host`` (serve it on trio, e.g. with
    hypercorn's trio worker or :func:`serve_ui`).

    Read-only unless ``allow_actions``; actions then need ``token`` (see
    :mod:`wfe.host.ui._security`). ``store_label`` is shown in the header (pass a
    redacted URL). ``allowed_hosts`` lists the ``Host`` names it answers (``None``: any;
    :func:`serve_ui` passes the bound name, refusing DNS-rebinding pages).
    """
    board = Dashboard(
        host,
        allow_actions=allow_actions,
        token=token,
        store_label=store_label,
        fallback_poll=fallback_poll,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(board.broker.serve, host)
            yield
            tasks.cancel_scope.cancel()

    routes = [
        Route("/", board.index),
        Route("/workflows/{id}", board.instance_page),
        Route("/api/session", board.session),
        Route("/api/login", board.login, methods=["POST"]),
        Route("/api/logout", board.logout, methods=["POST"]),
        Route("/api/workflows", board.list_workflows),
        Route("/api/stream", board.list_stream),
        Route("/api/workflows/{id}", board.workflow),
        Route("/api/workflows/{id}/logs", board.logs),
        Route("/api/workflows/{id}/stream", board.workflow_stream),
        Route("/api/workflows/{id}/{action}", board.act, methods=["POST"]),
        Route("/api/events", board.publish, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.dashboard = board
    return SecurityHeaders(app, allowed_hosts)
