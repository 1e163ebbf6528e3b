"""The live table on a terminal: a retried step shows ``retrying (2/4)`` and ends with
its final state; after Ctrl-C no step is left spinning."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .cli_support import wfe_cmd, write

pytest.importorskip("wfe.yaml")
pytest.importorskip("wfe.sqlite")

pytestmark = pytest.mark.timeout(120)

FLAKY = """\
workflow:
  id: flaky
  version: 1
  steps:
    - name: flaky
      error_behavior: {type: retry, interval: 1s, max_retries: 3}
      config:
        run: |
          n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count
          [ $n -ge 2 ] || { echo "not yet"; exit 1; }
"""

SLEEPY = """\
workflow:
  id: sleepy
  version: 1
  steps:
    - name: nap
      config:
        run: echo sleeping; sleep 60
"""


class Terminal:
    """``wfe ARGS`` on a pseudo-terminal; ``screen`` is everything it drew so far."""

    def __init__(self, cwd: Path, *args: str) -> None:
        self.leader, follower = pty.openpty()
        self.proc = subprocess.Popen(
            wfe_cmd(*args),
            cwd=cwd,
            stdout=follower,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "COLUMNS": "120", "TERM": "xterm"},
        )
        os.close(follower)
        self.chunks: list[bytes] = []

    @property
    def screen(self) -> str:
        return b"".join(self.chunks).decode(errors="replace")

    def read_until(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.screen:
            assert time.monotonic() < deadline, f"{text!r} never appeared:\n{self.screen}"
            if not self._read():
                raise AssertionError(f"the terminal closed before {text!r}:\n{self.screen}")

    def _read(self) -> bool:
        try:
            chunk = os.read(self.leader, 4096)
        except OSError:  # the terminal closed: the process has exited
            return False
        self.chunks.append(chunk)
        return bool(chunk)

    def finish(self) -> int:
        while self._read():
            pass
        os.close(self.leader)
        return self.proc.wait(timeout=60)


def test_a_retried_step_shows_its_attempts(tmp_path: Path) -> None:
    write(tmp_path, "flaky.yaml", FLAKY)
    term = Terminal(tmp_path, "run", "flaky.yaml")
    term.read_until("retrying (2/4)")
    assert term.finish() == 0
    last = term.screen.rsplit("flaky", 1)[1]  # the table's last drawing of the step
    assert "completed (attempt 2/4)" in last, term.screen


def test_after_ctrl_c_no_step_is_left_running(tmp_path: Path) -> None:
    write(tmp_path, "sleepy.yaml", SLEEPY)
    term = Terminal(tmp_path, "run", "sleepy.yaml")
    term.read_until("sleeping")
    term.proc.send_signal(signal.SIGINT)
    assert term.finish() == 130
    # The table's last drawing, before the closing lines.
    last = term.screen.rsplit("nap", 1)[1]
    assert "interrupted" in last
    assert "running" not in last
