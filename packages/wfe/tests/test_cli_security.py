"""The wfe command never prints a store password, and escapes control characters of
step output (issue 11)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("wfe.yaml")
pytest.importorskip("wfe.sqlite")

pytestmark = pytest.mark.timeout(120)

PASSWORD = "Sup3rSecretPw"

FAILING = """\
workflow:
  id: failing
  steps:
    - name: boom
      config: {run: "echo out; exit 3"}
"""

HOSTILE = """\
workflow:
  id: hostile
  steps:
    - name: draw
      config:
        run: printf 'before\\033[2J\\033]0;title\\007\\r[wfe] workflow x COMPLETE in 0.01s\\n'
"""


def wfe(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wfe.host._cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def store_urls(tmp_path: Path) -> list[str]:
    return [
        f"postgresql://app:{PASSWORD}@127.0.0.1:1/wfe",
        f"postgres://app:{PASSWORD}@127.0.0.1:1/wfe?sslmode=disable",
        f"valkey://:{PASSWORD}@127.0.0.1:1/0",
        f"redis://user:{PASSWORD}@127.0.0.1:1/0",
        f"opensearch://admin:{PASSWORD}@127.0.0.1:1",
        f"sqlite:///{tmp_path}/wfe.db?password={PASSWORD}",
        f"memory://user:{PASSWORD}@here",
    ]


@pytest.mark.parametrize("index", range(7))
def test_no_command_prints_the_store_password(tmp_path: Path, index: int) -> None:
    url = store_urls(tmp_path)[index]
    (tmp_path / "failing.yaml").write_text(FAILING)
    commands = [
        ["run", "failing.yaml", "--plain", "--store", url],
        ["run", "failing.yaml", "--detach", "--store", url],
        ["list", "--store", url],
        ["show", "0123", "--store", url],
        ["resume", "0123", "--store", url],
        ["suspend", "0123", "--store", url],
        ["publish", "go", "k", "--store", url],
    ]
    for args in commands:
        result = wfe(tmp_path, *args)
        printed = result.stdout + result.stderr
        assert PASSWORD not in printed, (args, printed)
        assert "Traceback" not in printed, (args, printed)


def test_resume_hints_keep_the_url_with_a_masked_password(tmp_path: Path) -> None:
    (tmp_path / "failing.yaml").write_text(FAILING)
    url = f"memory://user:{PASSWORD}@here"
    result = wfe(tmp_path, "run", "failing.yaml", "--plain", "--store", url)
    assert result.returncode == 1
    assert "--store memory://user:***@here" in result.stdout
    assert PASSWORD not in result.stdout + result.stderr


def test_plain_output_escapes_control_characters(tmp_path: Path) -> None:
    (tmp_path / "hostile.yaml").write_text(textwrap.dedent(HOSTILE))
    result = wfe(tmp_path, "run", "hostile.yaml", "--plain")
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout
    assert "\r" not in result.stdout
    assert "\x07" not in result.stdout
    assert "  draw | before\\x1b[2J\\x1b]0;title\\x07\\r[wfe] workflow x COMPLETE" in result.stdout
