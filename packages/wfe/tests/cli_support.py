"""Running the ``wfe`` command as a real process in a scratch directory (shared by the
CLI test files)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any


def wfe_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "wfe.host._cli", *args]


def wfe(
    cwd: Path, *args: str, timeout: float = 60, merged: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run ``wfe ARGS`` in ``cwd``; with ``merged``, stderr goes to the same pipe as
    stdout (as in a CI log)."""
    return subprocess.run(
        wfe_cmd(*args),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merged else subprocess.PIPE,
        text=True,
        timeout=timeout,
        check=False,
    )


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def started_id(out: str) -> str:
    match = re.search(r"workflow ([0-9a-f]+) started", out)
    assert match, out
    return match.group(1)


def show_json(cwd: Path, wid: str, *store: str) -> dict[str, Any]:
    result = wfe(cwd, "show", wid, "--json", *store)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]
