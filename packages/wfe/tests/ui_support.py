"""Helpers of the dashboard's tests: a dashboard served by hypercorn on a free loopback
port (in the test's trio run, or on a thread of its own for browser tests), a small
HTTP client, and the workflows the tests watch."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import shutil
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import attrs
import pytest
import trio

from wfe.core import ErrorBehavior, StepExecutionContext, WorkflowBuilder
from wfe.host import WorkflowHost, WorkflowHostBuilder
from wfe.host.ui import serve_ui

TOKEN = "test-token-0123456789"
HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'


def _log_and_go(ctx: StepExecutionContext) -> None:
    ctx.log("checking <the> order")
    ctx.log("all fine", "stderr")


def approval_definition() -> Any:
    """``prepare`` (logs two lines) → ``approve`` (waits for ``approve``/reference) →
    ``ship``."""
    return (
        WorkflowBuilder(dict)
        .start_with(_log_and_go)
        .name("prepare")
        .wait_for("approve", lambda d: d["key"])
        .name("approve")
        .then(lambda ctx: None)
        .name("ship")
        .build("approval", 1)
    )


HOSTILE_STEP = "</text><script>window.__pwned=3</script>"
_attempts: dict[str, int] = {}


def _charge(ctx: StepExecutionContext) -> None:
    seen = _attempts[ctx.workflow.id] = _attempts.get(ctx.workflow.id, 0) + 1
    if seen <= 2:
        raise RuntimeError(f"card declined <{seen}>")


def flaky_definition() -> Any:
    """``charge`` fails twice (retried after 50 ms), then a step with a hostile name."""
    return (
        WorkflowBuilder(dict)
        .start_with(_charge)
        .name("charge")
        .on_error(ErrorBehavior.retry(timedelta(milliseconds=50), max_retries=5))
        .then(lambda ctx: None)
        .name(HOSTILE_STEP)
        .build("flaky", 1)
    )


def _refuse(ctx: StepExecutionContext) -> None:
    raise RuntimeError("warehouse closed")


def _noop(ctx: StepExecutionContext) -> None:
    return None


def shapes_definition() -> Any:
    """Containers of every kind: if, while, a parallel for-each, parallel branches, and
    a saga whose second step fails (so its first is compensated, and the workflow
    ends there); ``approve`` after it is never reached."""
    return (
        WorkflowBuilder(dict)
        .start_with(_noop)
        .name("begin")
        .if_do(lambda d: True, lambda x: x.start_with(_noop).name("inside if"))
        .name("check")
        .while_do(lambda d: False, lambda x: x.start_with(_noop).name("loop body"))
        .name("loop")
        .for_each(lambda d: [1, 2, 3], lambda x: x.start_with(_noop).name("per item"))
        .name("items")
        .parallel()
        .do(lambda x: x.start_with(_noop).name("left"))
        .do(lambda x: x.start_with(_noop).name("right"))
        .join()
        .name("both")
        .saga(
            lambda x: (
                x.start_with(_noop)
                .name("reserve")
                .compensate_with(_noop)
                .then(_refuse)
                .name("pick")
            )
        )
        .name("checkout")
        .wait_for("approve", "shapes")
        .name("approve")
        .build("shapes", 1)
    )


def builder(store_url: str) -> WorkflowHostBuilder:
    return (
        WorkflowHostBuilder()
        .persistence(store_url)
        .register(approval_definition())
        .register(flaky_definition())
        .register(shapes_definition())
    )


@attrs.frozen
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    base: str,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """One HTTP request (blocking); JSON ``body`` if given. Header names lower case."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    sent = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        sent.setdefault("content-type", "application/json")
    try:
        conn.request(method, path, body=data, headers=sent)
        response = conn.getresponse()
        return Reply(
            response.status,
            {k.lower(): v for k, v in response.getheaders()},
            response.read(),
        )
    finally:
        conn.close()


async def arequest(base: str, method: str, path: str, **kw: Any) -> Reply:
    return await trio.to_thread.run_sync(lambda: request(base, method, path, **kw))


@contextlib.asynccontextmanager
async def dashboard(host: WorkflowHost, **options: Any) -> AsyncIterator[str]:
    """Serve ``host``'s dashboard on a free port; yields its base URL."""
    async with trio.open_nursery() as nursery:
        urls = await nursery.start(
            lambda task_status: serve_ui(host, port=0, task_status=task_status, **options)
        )
        yield urls[0]
        nursery.cancel_scope.cancel()


class ServedDashboard:
    """A host and its dashboard on a thread of their own (Playwright's sync API wants
    the main thread); :meth:`call` runs a coroutine function of the host there."""

    def __init__(self, store_url: str, **options: Any) -> None:
        self.store_url = store_url
        self.options = options
        self.url = ""
        self.host: WorkflowHost | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._ready = threading.Event()
        self._stop: trio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        async with builder(self.store_url).build() as host, dashboard(host, **self.options) as url:
            self.host, self.url = host, url
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> ServedDashboard:
        self._thread.start()
        if not self._ready.wait(60) or self._error is not None:
            raise RuntimeError(f"the dashboard did not start: {self._error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None and self._token is not None:
            trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(60)

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        assert self._token is not None
        return trio.from_thread.run(fn, *args, trio_token=self._token)


CHROMIUM = os.environ.get("WFE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def browser_missing() -> str | None:
    """Why browser tests cannot run here (``None`` when they can)."""
    if shutil.which(CHROMIUM) is None and not os.path.exists(CHROMIUM):
        return f"no chromium at {CHROMIUM} (apt-get install chromium; or set WFE_TEST_CHROMIUM)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (it is in the dev dependency group)"
    return None


def require_browser() -> None:
    """Skip (or, when ``WFE_REQUIRE_SERVICES`` names ``browser``, fail) without one."""
    why = browser_missing()
    if why is None:
        return
    names = os.environ.get("WFE_REQUIRE_SERVICES", "")
    message = f"browser tests need a browser: {why}"
    if "browser" in {n.strip().lower() for n in names.split(",")}:
        pytest.fail(message + " (WFE_REQUIRE_SERVICES names browser)")
    pytest.skip(message)


@contextlib.contextmanager
def chromium(tmp: str) -> Iterator[Any]:
    """A headless Debian chromium driven by Playwright, with a fresh profile."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an asyncio loop of its own; once another test has
    # imported trio-asyncio, the process-wide policy would hand it trio-asyncio's loop
    # instead (which refuses Playwright's nested runs). A plain policy for this block.
    saved = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())
    try:
        with _playwright(sync_playwright, tmp) as context:
            yield context
    finally:
        asyncio.set_event_loop_policy(saved)


@contextlib.contextmanager
def _playwright(sync_playwright: Any, tmp: str) -> Iterator[Any]:
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            tmp,
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1360, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()
