"""tools/chaos.py, short: 40 workflows of ten steps on three real host processes while a
random one is SIGKILLed every 2-4 s for 12 s, on SQLite and on PostgreSQL + Valkey.
Every workflow completes, no committed step runs again, every re-run was in flight in a
killed host, and no workflow runs on two hosts at once (the campaign checks, and exits
1 on a violation). Only generous deadlines: the hosts run until the work is done."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from . import pg_support

CHAOS = Path(__file__).resolve().parents[3] / "tools" / "chaos.py"
VALKEY_URL = os.environ.get("WFE_TEST_VALKEY_URL", "redis://127.0.0.1:6379/0")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def require_valkey() -> None:
    """Skip (or fail, when required) unless the Valkey/Redis server answers."""
    import valkey

    client = valkey.Valkey.from_url(VALKEY_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except valkey.ValkeyError as exc:
        message = f"no Valkey/Redis at WFE_TEST_VALKEY_URL={VALKEY_URL}: {exc}"
        names = os.environ.get("WFE_REQUIRE_SERVICES", "")
        if "valkey" in {n.strip().lower() for n in names.split(",")}:
            pytest.fail(message + " (WFE_REQUIRE_SERVICES names valkey)")
        pytest.skip(message)
    finally:
        client.close()


def figures(output: str) -> dict[str, str]:
    return {
        parts[0]: parts[1]
        for line in output.splitlines()
        if len(parts := line.split()) == 3 and not line.startswith(" ")
    }


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_short_chaos_campaign_loses_nothing(store: str) -> None:
    if store == "postgres":
        if not pg_support.INSTALLED:
            pytest.skip("wfe-postgres is not installed")
        pg_support.require_server()
        require_valkey()
    command = [sys.executable, str(CHAOS), "--store", store, "--workflows", "40"]
    command += ["--seconds", "12", "--kill-min", "2", "--kill-max", "4", "--drain", "240"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=540, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    got = figures(result.stdout)
    assert result.stdout.rstrip().endswith("ok"), output
    assert got["workflows"] == "40"
    assert got["steps"] == "400"
    assert int(got["kills"]) >= 2
    assert got["lost"] == "0"
    assert got["overlaps"] == "0"
    assert got["committed_reruns"] == "0"
    assert int(got["reruns"]) <= int(got["inflight_at_kills"])
