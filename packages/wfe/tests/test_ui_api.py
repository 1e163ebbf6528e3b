"""The dashboard's routes, served by hypercorn on trio and asked over real HTTP: listing
with filters and paging, the instance page's data, live streams, and the guarded
actions (read-only mode, token, CSRF, origin, host checks)."""

from __future__ import annotations

import http.client
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import trio

from wfe.core import WorkflowStatus

from .ui_support import HOSTILE, HOSTILE_STEP, TOKEN, arequest, builder, dashboard


@pytest.fixture
def store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'wfe.db'}"


async def _wait_status(host: object, wid: str, want: str) -> None:
    with trio.fail_after(20):
        while True:
            instance = await host.persistence.get_workflow(wid)  # type: ignore[attr-defined]
            steps = {p.step_name: p.status.value for p in instance.execution_pointers}
            if steps.get("approve") == want:
                return
            await trio.sleep(0.02)


async def test_list_pages_newest_first_and_filters_through_search(store: str) -> None:
    async with builder(store).build() as host, dashboard(host) as url:
        ids = [
            await host.start_workflow("approval", 1, {"key": f"k{i}"}, reference=f"order-{i}")
            for i in range(5)
        ]
        page = (await arequest(url, "GET", "/api/workflows?take=2")).json()
        assert [r["id"] for r in page["items"]] == ids[::-1][:2]
        assert page["more"] is True
        assert page["total"] is None  # the store's listing does not count
        last = (await arequest(url, "GET", "/api/workflows?take=2&skip=4")).json()
        assert [r["id"] for r in last["items"]] == [ids[0]]
        assert last["more"] is False
        row = last["items"][0]
        assert row["definition_id"] == "approval"
        assert row["reference"] == "order-0"
        assert row["status"] == "RUNNABLE"
        with trio.fail_after(20):
            while True:  # the index consumer catches up
                found = (await arequest(url, "GET", "/api/workflows?reference=order-3")).json()
                if found["total"] == 1:
                    break
                await trio.sleep(0.05)
        assert found["searched"] is True
        assert [r["id"] for r in found["items"]] == [ids[3]]
        terms = (await arequest(url, "GET", "/api/workflows?q=approval&take=3")).json()
        assert terms["total"] == 5
        assert len(terms["items"]) == 3
        assert terms["more"] is True
        none = (await arequest(url, "GET", "/api/workflows?status=complete")).json()
        assert none["items"] == []


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("status=bogus", "status"),
        ("skip=-1", "skip"),
        ("take=many", "take"),
        ("since=yesterday", "since"),
        ("data=novalue", "data"),
    ],
)
async def test_a_bad_query_is_a_400_naming_the_parameter(
    store: str, query: str, named: str
) -> None:
    async with builder(store).build() as host, dashboard(host) as url:
        reply = await arequest(url, "GET", f"/api/workflows?{query}")
    assert reply.status == 400
    assert named in reply.json()["error"]


async def test_instance_route_gives_steps_graph_subscriptions_errors_and_logs(
    store: str,
) -> None:
    async with builder(store).build() as host, dashboard(host) as url:
        wid = await host.start_workflow("approval", 1, {"key": "A-1"}, reference="A-1")
        await _wait_status(host, wid, "WAITING_FOR_EVENT")
        with trio.fail_after(20):
            while True:  # the step-log writer flushes in batches
                logs = (await arequest(url, "GET", f"/api/workflows/{wid}/logs")).json()
                if len(logs["lines"]) == 2:
                    break
                await trio.sleep(0.05)
        detail = (await arequest(url, "GET", f"/api/workflows/{wid}")).json()
    assert detail["status"] == "RUNNABLE"
    assert [(s["name"], s["status"]) for s in detail["steps"]] == [
        ("prepare", "COMPLETE"),
        ("approve", "WAITING_FOR_EVENT"),
    ]
    assert detail["subscriptions"] == [
        {
            "pointer_id": detail["steps"][1]["pointer_id"],
            "step": "approve",
            "event_name": "approve",
            "event_key": "A-1",
            "state": "waiting",
            "since": detail["steps"][1]["start_time"],
            "data": None,
        }
    ]
    assert detail["errors"] == []
    assert detail["data"] == {"key": "A-1"}
    assert detail["has_logs"] is True
    svg = detail["graph_svg"]
    assert svg.startswith("<svg")
    assert re.search(r'data-step-id="0"[^>]*data-state="complete"', svg)
    assert re.search(r'data-step-id="1"[^>]*data-state="waiting"', svg)
    assert [(x["step"], x["stream"], x["line"]) for x in logs["lines"]] == [
        ("prepare", "log", "checking <the> order"),
        ("prepare", "stderr", "all fine"),
    ]


async def test_retries_show_as_a_count_and_errors_and_step_names_stay_escaped(
    store: str,
) -> None:
    async with builder(store).build() as host, dashboard(host) as url:
        wid = await host.start_workflow("flaky", 1, {})
        assert (await host.wait_for_workflow(wid, 20)).status is WorkflowStatus.COMPLETE
        detail = (await arequest(url, "GET", f"/api/workflows/{wid}")).json()
    charge = detail["steps"][0]
    assert (charge["name"], charge["status"], charge["retry_count"]) == ("charge", "COMPLETE", 2)
    assert [(e["step"], e["pointer_id"]) for e in detail["errors"]] == [
        ("charge", charge["pointer_id"])
    ] * 2
    assert "card declined <1>" in detail["errors"][0]["message"]
    assert detail["steps"][1]["name"] == HOSTILE_STEP
    assert "<script>" not in detail["graph_svg"]
    assert "&lt;/text&gt;&lt;script&gt;" in detail["graph_svg"]


async def test_unknown_workflow_is_404(store: str) -> None:
    async with builder(store).build() as host, dashboard(host) as url:
        reply = await arequest(url, "GET", "/api/workflows/nope")
    assert reply.status == 404
    assert "nope" in reply.json()["error"]


async def test_pages_and_api_carry_a_strict_content_security_policy(store: str) -> None:
    async with builder(store).build() as host, dashboard(host) as url:
        for path in (
            "/",
            "/workflows/x",
            "/api/workflows",
            "/static/app.js".replace("app", "list"),
        ):
            reply = await arequest(url, "GET", path)
            assert reply.status == 200, path
            csp = reply.headers["content-security-policy"]
            assert "script-src 'self'" in csp
            assert "unsafe-inline" not in csp
            assert reply.headers["x-content-type-options"] == "nosniff"
        page = (await arequest(url, "GET", "/")).body.decode()
    # No inline script anywhere: every script is a file of the package.
    assert re.findall(r"<script[^>]*>", page) == [
        '<script src="/static/common.js" defer>',
        '<script src="/static/list.js" defer>',
    ]


async def test_a_foreign_host_name_is_refused_on_loopback(store: str) -> None:
    """A DNS-rebinding page reaches 127.0.0.1 under its own name: refused."""
    async with builder(store).build() as host, dashboard(host) as url:
        reply = await arequest(url, "GET", "/api/workflows", headers={"host": "evil.example"})
        ok = await arequest(url, "GET", "/api/workflows", headers={"host": "localhost:1"})
    assert reply.status == 400
    assert ok.status == 200


async def test_read_only_mode_refuses_every_action(store: str) -> None:
    async with builder(store).build() as host, dashboard(host) as url:
        wid = await host.start_workflow("approval", 1, {"key": "k"})
        session = (await arequest(url, "GET", "/api/session")).json()
        assert session["allow_actions"] is False
        bearer = {"authorization": f"Bearer {TOKEN}"}
        for path in (f"/api/workflows/{wid}/terminate", "/api/login", "/api/events"):
            reply = await arequest(url, "POST", path, body={"token": TOKEN}, headers=bearer)
            assert reply.status == 403, path
            assert "read-only" in reply.json()["error"]
        instance = await host.persistence.get_workflow(wid)
    assert instance.status is WorkflowStatus.RUNNABLE


async def test_actions_need_the_token_and_a_csrf_token_with_the_cookie(store: str) -> None:
    async with (
        builder(store).build() as host,
        dashboard(host, allow_actions=True, token=TOKEN) as url,
    ):
        wid = await host.start_workflow("approval", 1, {"key": "k"})
        terminate = f"/api/workflows/{wid}/terminate"
        assert (await arequest(url, "POST", terminate)).status == 403
        wrong = {"authorization": "Bearer nope"}
        assert (await arequest(url, "POST", terminate, headers=wrong)).status == 403
        assert (await arequest(url, "POST", "/api/login", body={"token": "nope"})).status == 403

        login = await arequest(url, "POST", "/api/login", body={"token": TOKEN})
        assert login.status == 200
        cookie_header = login.headers["set-cookie"]
        assert "HttpOnly" in cookie_header
        assert "SameSite=strict" in cookie_header or "SameSite=Strict" in cookie_header
        cookie = cookie_header.split(";", 1)[0]
        csrf = login.json()["csrf_token"]
        with_cookie = {"cookie": cookie}
        session = (await arequest(url, "GET", "/api/session", headers=with_cookie)).json()
        assert session == {**session, "logged_in": True, "csrf_token": csrf}

        # The cookie alone (what a cross-site form would send) is not enough.
        refused = await arequest(url, "POST", terminate, headers=with_cookie)
        assert refused.status == 403
        assert "CSRF" in refused.json()["error"]
        bad = {**with_cookie, "x-csrf-token": "forged"}
        assert (await arequest(url, "POST", terminate, headers=bad)).status == 403
        good = {**with_cookie, "x-csrf-token": csrf}
        foreign = {**good, "origin": "http://evil.example"}
        assert (await arequest(url, "POST", terminate, headers=foreign)).status == 403
        assert (await arequest(url, "POST", terminate, headers=good)).json()["ok"] is True
        assert (await host.persistence.get_workflow(wid)).status is WorkflowStatus.TERMINATED
        again = await arequest(url, "POST", terminate, headers=good)
        assert again.status == 409

        other = await host.start_workflow("approval", 1, {"key": "b"})
        bearer = {"authorization": f"Bearer {TOKEN}"}
        for action, status in (
            ("suspend", WorkflowStatus.SUSPENDED),
            ("resume", WorkflowStatus.RUNNABLE),
        ):
            path = f"/api/workflows/{other}/{action}"
            assert (await arequest(url, "POST", path, headers=bearer)).status == 200
            assert (await host.persistence.get_workflow(other)).status is status
        await _wait_status(host, other, "WAITING_FOR_EVENT")
        event = {"name": "approve", "key": "b", "data": {"by": HOSTILE}}
        published = await arequest(url, "POST", "/api/events", body=event, headers=bearer)
        assert published.status == 200
        assert (await host.wait_for_workflow(other, 20)).status is WorkflowStatus.COMPLETE
        detail = (await arequest(url, "GET", f"/api/workflows/{other}")).json()
        assert detail["subscriptions"][0]["state"] == "received"
        assert detail["subscriptions"][0]["data"] == {"by": HOSTILE}
        missing = await arequest(url, "POST", "/api/events", body={"key": "b"}, headers=bearer)
        assert missing.status == 400
        assert "name" in missing.json()["error"]

        out = await arequest(url, "POST", "/api/logout", headers=good)
        assert out.status == 200
        assert (await arequest(url, "POST", terminate, headers=good)).status == 403


def _read_events(
    base: str, path: str, wanted: int, stop: float, opened: Callable[[], None]
) -> list[str]:
    """Read a server-sent-events stream until ``wanted`` ``change`` events came;
    ``opened()`` once the stream's first line arrived."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=stop)
    conn.request("GET", path)
    response = conn.getresponse()
    assert response.getheader("content-type", "").startswith("text/event-stream")
    seen: list[str] = []
    try:
        while len([s for s in seen if s == "event: change"]) < wanted:
            line = response.readline().decode().rstrip("\n")
            if line:
                if not seen:
                    opened()
                seen.append(line)
    finally:
        conn.close()
    return seen


async def test_the_stream_says_change_when_a_step_completes(store: str) -> None:
    async with builder(store).build() as host, dashboard(host) as url:
        wid = await host.start_workflow("approval", 1, {"key": "live"})
        await _wait_status(host, wid, "WAITING_FOR_EVENT")
        got: list[list[str]] = []
        opened = trio.Event()
        token = trio.lowlevel.current_trio_token()

        def on_open() -> None:
            trio.from_thread.run_sync(opened.set, trio_token=token)

        async def listen() -> None:
            path = f"/api/workflows/{wid}/stream"
            got.append(await trio.to_thread.run_sync(_read_events, url, path, 1, 20, on_open))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(listen)
            with trio.fail_after(20):
                await opened.wait()  # the stream has taken its first look
            await host.publish_event("approve", "live", None)
            await host.wait_for_workflow(wid, 20)
    assert "event: change" in got[0]


def test_the_public_names_of_wfe_host_ui() -> None:
    import wfe.host.ui

    assert wfe.host.ui.__all__ == ["create_app", "new_token", "serve_ui"]
