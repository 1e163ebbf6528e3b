"""The dashboard in a real headless Chromium (Debian's ``chromium``, driven by
Playwright): the list, search, an instance page with its graph, a step turning complete
live, hostile store content staying text, and terminating with actions allowed.

Screenshots go to ``test-artifacts/ui/`` at the repository root."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .ui_support import HOSTILE, HOSTILE_STEP, TOKEN, ServedDashboard, chromium, require_browser

pytestmark = pytest.mark.timeout(120)

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "ui"
WAIT = 20_000
"""Milliseconds any condition may take to appear."""


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    require_browser()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    print(f"screenshots in {ARTIFACTS}")
    with chromium(str(tmp_path_factory.mktemp("chromium-profile"))) as context:
        yield context


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServedDashboard]:
    with ServedDashboard(
        f"sqlite:///{tmp_path / 'wfe.db'}", allow_actions=True, token=TOKEN
    ) as dashboard:
        yield dashboard


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    page.close()
    assert errors == [], errors


def _start(served: ServedDashboard, key: str, reference: str | None, data: Any = None) -> str:
    assert served.host is not None
    body = {"key": key, **(data or {})}
    wid: str = served.call(served.host.start_workflow, "approval", 1, body, reference)
    return wid


def expect(locator: Any) -> Any:
    """Playwright's waiting assertions (imported once the browser is known to exist)."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def _wait_waiting(page: Any) -> None:
    page.locator('[data-step="approve"][data-status="WAITING_FOR_EVENT"]').wait_for(timeout=WAIT)


def test_list_search_open_an_instance_and_see_its_graph(served: ServedDashboard, page: Any) -> None:
    ids = [_start(served, f"k{i}", f"order-{i:03d}") for i in range(24)]
    hostile = _start(served, "evil", HOSTILE, {"note": HOSTILE})
    page.goto(served.url + "/")
    rows = page.locator("#rows tr[data-id]")
    rows.first.wait_for(timeout=WAIT)
    assert rows.count() == 25
    # The hostile reference is shown as the text it is, in its own cell.
    cell = page.locator(f'#rows tr[data-id="{hostile}"] td').nth(3)
    assert cell.text_content() == HOSTILE
    assert page.locator("#rows img, #rows script").count() == 0
    page.screenshot(path=str(ARTIFACTS / "list.png"), full_page=True)

    search = page.locator('input[name="q"]')
    search.fill("order-017")
    search.press("Enter")
    page.wait_for_function(
        "() => document.querySelectorAll('#rows tr[data-id]').length === 1", timeout=WAIT
    )
    assert page.locator("#range").text_content() == "1\u20131 of 1"  # an en dash
    assert "q=order-017" in page.url
    page.screenshot(path=str(ARTIFACTS / "search.png"), full_page=True)

    page.locator(f'#rows a[href="/workflows/{ids[17]}"]').click()
    page.wait_for_url(f"**/workflows/{ids[17]}", timeout=WAIT)
    expect(page.locator("#wid")).to_have_text(ids[17], timeout=WAIT)
    _wait_waiting(page)
    node = page.locator('#graph svg g.node[data-step-id="1"]')
    node.wait_for(timeout=WAIT)
    assert node.get_attribute("data-state") == "waiting"
    assert page.locator('#graph svg g.node[data-step-id="0"]').get_attribute("data-state") == (
        "complete"
    )
    page.locator("#logs-card").wait_for(timeout=WAIT)
    assert "checking <the> order" in (page.locator("#logs").text_content() or "")
    page.screenshot(path=str(ARTIFACTS / "instance.png"), full_page=True)

    page.goto(f"{served.url}/workflows/{hostile}")
    _wait_waiting(page)
    facts = page.locator("#facts").text_content() or ""
    assert HOSTILE in facts
    assert json.dumps(HOSTILE) in (page.locator("#data").text_content() or "")
    assert page.locator("#summary img, #data img, script:not([src])").count() == 0
    assert page.evaluate("window.__pwned") is None
    page.screenshot(path=str(ARTIFACTS / "hostile.png"), full_page=True)
    page.set_viewport_size({"width": 420, "height": 900})  # a phone: one column
    page.screenshot(path=str(ARTIFACTS / "instance-narrow.png"), full_page=True)


def test_a_step_turns_complete_live_while_the_page_is_open(
    served: ServedDashboard, page: Any
) -> None:
    wid = _start(served, "live", "live-1")
    page.goto(f"{served.url}/workflows/{wid}")
    _wait_waiting(page)
    page.locator("#live.on").wait_for(timeout=WAIT)  # the stream is connected
    assert served.host is not None
    served.call(served.host.publish_event, "approve", "live", {"by": "ann"})
    page.locator('[data-step="approve"][data-status="COMPLETE"]').wait_for(timeout=WAIT)
    page.locator('[data-step="ship"][data-status="COMPLETE"]').wait_for(timeout=WAIT)
    page.locator('#status[data-status="COMPLETE"]').wait_for(timeout=WAIT)
    state = page.locator('#graph svg g.node[data-step-id="1"]').get_attribute("data-state")
    assert state == "complete"
    assert "ann" in (page.locator("#subs").text_content() or "")
    page.screenshot(path=str(ARTIFACTS / "live-complete.png"), full_page=True)


def test_retries_are_visible_and_a_hostile_step_name_stays_text(
    served: ServedDashboard, page: Any
) -> None:
    assert served.host is not None
    wid: str = served.call(served.host.start_workflow, "flaky", 1, {})
    page.goto(f"{served.url}/workflows/{wid}")
    page.locator('#status[data-status="COMPLETE"]').wait_for(timeout=WAIT)
    charge = page.locator('[data-step="charge"]')
    assert charge.locator(".retry").text_content() == "↻2"
    assert charge.locator(".tick").count() == 2  # one mark per failed attempt
    assert page.locator("#errors .error").count() == 2
    assert "card declined <2>" in (page.locator("#errors").text_content() or "")
    assert HOSTILE_STEP in (page.locator("#gantt").text_content() or "")
    assert HOSTILE_STEP in (page.locator("#graph svg").text_content() or "")
    assert page.locator("#graph script, #gantt script").count() == 0
    assert page.evaluate("window.__pwned") is None
    page.screenshot(path=str(ARTIFACTS / "retries.png"), full_page=True)


def test_the_graph_draws_containers_and_compensation_with_states(
    served: ServedDashboard, page: Any
) -> None:
    assert served.host is not None
    wid: str = served.call(served.host.start_workflow, "shapes", 1, {})
    page.goto(f"{served.url}/workflows/{wid}")
    # The saga's failure compensates it and ends the workflow before the last step.
    page.locator('#status[data-status="COMPLETE"]').wait_for(timeout=WAIT)
    graph = page.locator("#graph svg")
    assert graph.locator('g.node[data-container="true"]').count() >= 5
    labels = graph.locator("g.node > text").all_text_contents()
    for name in ("inside if", "loop body", "per item", "left", "right", "reserve", "pick"):
        assert name in labels
    assert graph.locator('g.node[data-compensation="true"]').count() == 1
    assert graph.locator('g.node[data-state="compensated"]').count() >= 1
    assert page.locator('[data-step="per item"][data-status="COMPLETE"]').count() == 3
    page.screenshot(path=str(ARTIFACTS / "graph.png"), full_page=True)


def test_log_in_and_terminate_a_workflow(served: ServedDashboard, page: Any) -> None:
    wid = _start(served, "stop", "stop-1")
    page.goto(f"{served.url}/workflows/{wid}")
    _wait_waiting(page)
    assert page.locator("#actions").is_hidden()  # not logged in yet
    page.locator('#login input[name="token"]').fill("wrong")
    page.locator("#login button").click()
    page.locator("#message").get_by_text("wrong access token").wait_for(timeout=WAIT)
    page.locator('#login input[name="token"]').fill(TOKEN)
    page.locator("#login button").click()
    page.locator("#actions").wait_for(state="visible", timeout=WAIT)
    page.on("dialog", lambda dialog: dialog.accept())
    page.locator('#actions button[data-action="terminate"]').click()
    page.locator('#status[data-status="TERMINATED"]').wait_for(timeout=WAIT)
    assert page.locator('#actions button[data-action="terminate"]').is_disabled()
    page.locator("#subs").get_by_text("cancelled").wait_for(timeout=WAIT)
    page.screenshot(path=str(ARTIFACTS / "terminated.png"), full_page=True)


def test_read_only_dashboard_shows_no_actions(tmp_path: Path, page: Any) -> None:
    with ServedDashboard(f"sqlite:///{tmp_path / 'ro.db'}") as served:
        wid = _start(served, "ro", "ro-1")
        page.goto(f"{served.url}/workflows/{wid}")
        _wait_waiting(page)
        assert page.locator("#auth").text_content() == "read-only"
        assert page.locator("#login").count() == 0
        assert page.locator("#actions").is_hidden()
