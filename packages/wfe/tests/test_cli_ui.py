"""``wfe ui`` as a real process: it serves the store's dashboard with hypercorn on trio,
finds the remembered definitions (for the graph), runs no workflow, guards actions
with the token it prints, and stops cleanly on SIGINT."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from wfe.host.ui._serve import allowed_hosts, is_loopback

from .cli_support import started_id, wfe, wfe_cmd, write
from .ui_support import request

pytestmark = pytest.mark.timeout(120)

WAITER = """\
from wfe.core import WorkflowBuilder

definition = (
    WorkflowBuilder(dict)
    .start_with(lambda ctx: None).name("begin")
    .wait_for("go", "k1").name("wait-go")
    .build("waiter", 1)
)
"""


@pytest.fixture
def started(tmp_path: Path) -> str:
    """A workflow started with ``--detach`` (so nothing runs it) in the default store."""
    write(tmp_path, "waiter.py", WAITER)
    result = wfe(tmp_path, "run", "--import", "waiter:definition", "--detach")
    assert result.returncode == 0, result.stderr
    return started_id(result.stdout + result.stderr)


def _serve(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], str, list[str]]]:
    proc = subprocess.Popen(
        wfe_cmd("ui", "--port", "0", *args),
        cwd=tmp_path,
        env=None if env is None else {**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        while True:
            line = proc.stdout.readline()
            assert line, (
                f"wfe ui exited: {proc.wait(10)}: {proc.stderr.read() if proc.stderr else ''}"
            )
            lines.append(line)
            found = re.search(r"at (http://127\.0\.0\.1:\d+) ", line)
            if found:
                break
        if "--allow-actions" in args:
            lines.append(proc.stdout.readline())
        yield proc, found.group(1), lines
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_wfe_ui_serves_the_store_read_only_and_stops_on_sigint(
    tmp_path: Path, started: str
) -> None:
    for proc, url, lines in _serve(tmp_path):
        assert "(read-only)" in lines[-1]
        assert "sqlite:///" in lines[-1]
        page = request(url, "GET", "/api/workflows").json()
        assert [r["id"] for r in page["items"]] == [started]
        detail = request(url, "GET", f"/api/workflows/{started}").json()
        # The remembered definition gives the graph; this process ran nothing.
        assert detail["definition_known"] is True
        assert re.search(r'data-step-id="0"[^>]*data-state="pending"', detail["graph_svg"])
        assert [s["name"] for s in detail["steps"]] == ["begin"]
        assert detail["steps"][0]["status"] == "PENDING"
        refused = request(url, "POST", f"/api/workflows/{started}/terminate")
        assert refused.status == 403
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "[wfe] ui stopped" in out


def test_wfe_ui_with_actions_prints_a_token_that_terminates(tmp_path: Path, started: str) -> None:
    for proc, url, lines in _serve(tmp_path, "--allow-actions"):
        found = re.search(r"access token for actions: (\S+)", lines[-1])
        assert found, lines
        token = found.group(1)
        path = f"/api/workflows/{started}/terminate"
        assert request(url, "POST", path).status == 403
        done = request(url, "POST", path, headers={"authorization": f"Bearer {token}"})
        assert done.status == 200, done.body
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    show = wfe(tmp_path, "show", started, "--json")
    assert '"status": "TERMINATED"' in show.stdout


def test_wfe_ui_token_comes_from_the_environment_or_the_option(tmp_path: Path) -> None:
    write(tmp_path, "waiter.py", WAITER)
    assert wfe(tmp_path, "run", "--import", "waiter:definition", "--detach").returncode == 0
    for proc, url, lines in _serve(tmp_path, "--allow-actions", "--token", "s3cret-token"):
        assert "s3cret-token" in lines[-1]
        login = request(url, "POST", "/api/login", body={"token": "s3cret-token"})
        assert login.status == 200
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    env = {"WFE_UI_TOKEN": "from-the-env"}
    for proc, url, lines in _serve(tmp_path, "--allow-actions", env=env):
        assert "from-the-env" in lines[-1]
        assert request(url, "POST", "/api/login", body={"token": "from-the-env"}).status == 200
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)


def test_wfe_ui_without_a_store_here_says_so(tmp_path: Path) -> None:
    result = wfe(tmp_path, "ui", "--port", "0")
    assert result.returncode == 3
    assert "no store at" in result.stderr


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("192.168.1.5", False),
        ("example.org", False),
    ],
)
def test_only_loopback_addresses_count_as_local(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    assert (allowed_hosts(host) is not None) is loopback


def test_wfe_ui_without_the_ui_extra_says_how_to_install_it(tmp_path: Path, started: str) -> None:
    # Starlette made unimportable, as where the ``ui`` extra is not installed.
    code = (
        "import sys; sys.modules['starlette'] = None; "
        "from wfe.host._cli import main; sys.exit(main(['ui', '--port', '0']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "wfe ui needs the ui extra (starlette is missing)" in result.stderr
    assert "wfe[ui]" in result.stderr
