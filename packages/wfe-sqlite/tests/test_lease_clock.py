"""Leases on a SQLite file do not follow wall-clock steps (an NTP correction): a process
whose wall clock jumps an hour forward keeps renewing its lease (a forward step used to
expire every held lease, so the steps in flight ran twice), and one whose clock jumps
back still loses an unrenewed lease on time. The clock is stepped for real, in a
separate process, with libfaketime (Debian's ``faketime``; wall time only: monotonic
clocks untouched, as in a real step)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Debian installs it under the machine's multiarch directory (x86_64-linux-gnu, ...).
LIBFAKETIME = next(
    iter(sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))),
    Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"),
)
WORKER = Path(__file__).with_name("lease_clock_worker.py")


def _required() -> bool:
    names = os.environ.get("WFE_REQUIRE_SERVICES", "")
    return "faketime" in {n.strip().lower() for n in names.split(",")}


class Stepped:
    """The worker process and the file holding its clock offset."""

    def __init__(self, tmp_path: Path) -> None:
        self.offset = tmp_path / "offset"
        self.offset.write_text("+0\n")
        env = {
            **os.environ,
            "LD_PRELOAD": str(LIBFAKETIME),
            "FAKETIME_TIMESTAMP_FILE": str(self.offset),
            "FAKETIME_NO_CACHE": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        }
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), f"sqlite:///{tmp_path / 'wfe.db'}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.read() == "acquired"

    def step(self, offset: str) -> None:
        self.offset.write_text(f"{offset}\n")

    def ask(self, command: str) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.read()

    def read(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()


@pytest.fixture
def stepped(tmp_path: Path) -> Iterator[Stepped]:
    if not LIBFAKETIME.exists():
        if _required():
            pytest.fail(f"{LIBFAKETIME} is missing (apt-get install faketime)")
        pytest.skip(f"libfaketime is not installed ({LIBFAKETIME}; apt-get install faketime)")
    worker = Stepped(tmp_path)
    try:
        yield worker
    finally:
        worker.proc.kill()
        worker.proc.communicate()  # reaps it and closes its pipes


def test_a_forward_step_does_not_expire_a_held_lease(stepped: Stepped) -> None:
    stepped.step("+3600")
    assert stepped.ask("renew") == "renewed True"
    assert stepped.ask("held") == "taken False"


def test_a_backward_step_does_not_stretch_a_lease(stepped: Stepped) -> None:
    """Acquired before the step and not renewed: it ends one TTL later, not an hour."""
    stepped.step("-3600")
    assert stepped.ask("expire") == "taken True"
