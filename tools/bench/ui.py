"""Dashboard figures (``wfe ui``): list-page times on a big store, and how long a step
takes to show as complete in a real browser.

Fills a SQLite store with ``--count`` instances (default 100,000; indexed), serves its
dashboard with a host that runs no workflow (as ``wfe ui`` does), and prints
``metric value unit`` lines (``#`` lines are context):

- ``list_api_<query>_ms``: median time of one ``GET /api/workflows`` page of 50 (the
  first page, a status filter, a search word, an exact reference, a page 50,000 deep);
- ``list_page_ms``: median time from navigating Chromium to the list page until its
  50 rows are drawn (HTML, scripts, session and list requests, rendering);
- ``step_to_browser_ms`` (median) / ``step_to_browser_max_ms``: from a step's body
  returning, in a host serving its own dashboard, to an open instance page showing the
  step COMPLETE (pushed by server-sent events);
- ``step_to_browser_elsewhere_ms``: the same when another host runs the workflow and the
  store has no change feed (SQLite): the page learns by the stream's slow poll.

    python tools/bench/ui.py [--count N] [--rounds R]

Needs the ``wfe[ui]`` extra, Playwright and Debian's ``chromium``.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import trio

from wfe.core import StepExecutionContext, WorkflowBuilder, WorkflowInstance, WorkflowStatus
from wfe.core.testing import make_instance
from wfe.host import WorkflowHost, WorkflowHostBuilder
from wfe.host.ui import serve_ui

sys.path.insert(0, str(Path(__file__).parent))
import search_purge

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
NOW = datetime.now(UTC)
STATUSES = [WorkflowStatus.COMPLETE] * 7 + [WorkflowStatus.TERMINATED, WorkflowStatus.SUSPENDED]
FINISHED: dict[str, float] = {}
"""Workflow id -> wall-clock time its ``work`` step's body returned."""


def instance(i: int) -> WorkflowInstance:
    created = NOW - timedelta(minutes=i)
    status = STATUSES[i % len(STATUSES)]
    return make_instance(
        definition_id=f"bench{i % 10}",
        reference=f"order-{i}",
        description=f"parcel {i % 97}",
        data={"customer": f"c{i % 1000}", "amount": i % 500},
        status=status,
        create_time=created,
        complete_time=created + timedelta(seconds=30 + i % 90)
        if status is not WorkflowStatus.SUSPENDED
        else None,
    )


async def fill(url: str, count: int) -> float:
    """Create and index ``count`` of this bench's instances; returns seconds taken."""
    return await search_purge.fill(url, count, instance)


def work(ctx: StepExecutionContext) -> None:
    FINISHED[ctx.workflow.id] = time.time()


def watched() -> Any:
    """``go`` (an event) → ``work`` (records when it finished) → ``park`` (waits)."""
    return (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: None)
        .name("begin")
        .wait_for("go", lambda d: d["key"])
        .name("go")
        .then(work)
        .name("work")
        .wait_for("never", "x")
        .name("park")
        .build("watched", 1)
    )


class Served:
    """Hosts and a dashboard on a thread of their own, with a way to call into them."""

    def __init__(self, url: str, *, runs_here: bool) -> None:
        self.url = url
        self.runs_here = runs_here
        self.base = ""
        self.runner: WorkflowHost | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._ready = threading.Event()
        self._stop: trio.Event | None = None
        self._thread = threading.Thread(target=lambda: trio.run(self._main), daemon=True)

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        shown = WorkflowHostBuilder().persistence(self.url).register(watched())
        if not self.runs_here:
            shown.run_workflows(False)
        async with shown.build() as ui_host, trio.open_nursery() as nursery:
            if self.runs_here:
                self.runner = ui_host
            else:
                worker = WorkflowHostBuilder().persistence(self.url).register(watched()).build()
                self.runner = await nursery.start(_keep, worker)
            urls = await nursery.start(
                lambda task_status: serve_ui(ui_host, port=0, task_status=task_status)
            )
            self.base = urls[0]
            self._ready.set()
            await self._stop.wait()
            nursery.cancel_scope.cancel()

    def __enter__(self) -> Served:
        self._thread.start()
        if not self._ready.wait(120):
            raise RuntimeError("the dashboard did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        assert self._token is not None
        trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(60)

    def call(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        return trio.from_thread.run(fn, *args, trio_token=self._token)


async def _keep(host: WorkflowHost, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    async with host:
        task_status.started(host)
        await trio.sleep_forever()


def get_ms(base: str, path: str, rounds: int) -> float:
    port = int(base.rsplit(":", 1)[1])
    times = []
    for _ in range(rounds):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        started = time.perf_counter()
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        times.append((time.perf_counter() - started) * 1000)
        conn.close()
        assert response.status == 200, (path, response.status)
    return statistics.median(times)


def list_figures(context: Any, url: str, rounds: int) -> None:
    with Served(url, runs_here=False) as served:
        queries = {
            "first": "/api/workflows?take=50",
            "status": "/api/workflows?status=terminated&take=50",
            "search": "/api/workflows?q=parcel&take=50",
            "reference": "/api/workflows?reference=order-4242&take=50",
            "deep": "/api/workflows?skip=50000&take=50",
        }
        for name, path in queries.items():
            print(f"list_api_{name}_ms {get_ms(served.base, path, rounds):.1f} ms")
        page = context.new_page()
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            page.goto(served.base + "/")
            page.wait_for_function(
                "() => document.querySelectorAll('#rows tr[data-id]').length === 50", timeout=60_000
            )
            times.append((time.perf_counter() - started) * 1000)
        print(f"list_page_ms {statistics.median(times):.1f} ms")
        page.close()


WATCH = """
(step) => {
  window.__shownAt = null;
  const seen = () => document.querySelector(`[data-step="${step}"][data-status="COMPLETE"]`);
  new MutationObserver((_, observer) => {
    if (seen()) { observer.disconnect(); window.__shownAt = Date.now(); }
  }).observe(document.body, { subtree: true, childList: true, attributes: true });
}
"""


def latency(context: Any, url: str, runs_here: bool, rounds: int) -> list[float]:
    out = []
    with Served(url, runs_here=runs_here) as served:
        page = context.new_page()
        for i in range(rounds):
            runner = served.runner
            assert runner is not None
            wid = served.call(runner.start_workflow, "watched", 1, {"key": f"k{i}"})
            page.goto(f"{served.base}/workflows/{wid}")
            page.locator('[data-step="go"][data-status="WAITING_FOR_EVENT"]').wait_for(
                timeout=60_000
            )
            page.locator("#live.on").wait_for(timeout=60_000)
            page.evaluate(WATCH, "work")
            served.call(runner.publish_event, "go", f"k{i}", None)
            at = page.wait_for_function("() => window.__shownAt", timeout=60_000).json_value()
            out.append(at - FINISHED[wid] * 1000)
        page.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=9)
    options = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        big = f"sqlite:///{Path(tmp) / 'big.db'}"
        took = trio.run(fill, big, options.count)
        print(f"# filled {options.count} instances in {took:.1f} s")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            context = browser.new_context(viewport={"width": 1360, "height": 900})
            list_figures(context, big, options.rounds)
            here = latency(context, f"sqlite:///{Path(tmp) / 'here.db'}", True, options.rounds)
            print(f"step_to_browser_ms {statistics.median(here):.0f} ms")
            print(f"step_to_browser_max_ms {max(here):.0f} ms")
            away = latency(context, f"sqlite:///{Path(tmp) / 'away.db'}", False, options.rounds)
            print(f"step_to_browser_elsewhere_ms {statistics.median(away):.0f} ms")
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
