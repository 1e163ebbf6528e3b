"""A private PostgreSQL 15 cluster for tests that restart the server or need password
authentication: ``initdb`` + ``pg_ctl`` in a temporary directory on a free loopback
port (never the machine's shared server). PostgreSQL refuses to run as root, so as root
the cluster runs as the ``postgres`` user through ``runuser``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

BIN = Path(os.environ.get("WFE_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
PASSWORD = "s3cret-Pw!"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """A running private cluster; ``url(...)`` builds URLs to it."""

    def __init__(self, root: Path, port: int, as_user: list[str]) -> None:
        self.root = root
        self.data = root / "data"
        self.port = port
        self._as_user = as_user

    def url(self, user: str = "postgres", password: str = PASSWORD, db: str = "postgres") -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{db}"

    def ctl(self, *args: str) -> None:
        # Output to a file, not a pipe: the server pg_ctl starts inherits it, and a pipe
        # would keep this call waiting for its end as long as the server runs.
        with (self.root / "ctl.out").open("ab") as out:
            pg_ctl = [str(BIN / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60", *args]
            done = subprocess.run(
                [*self._as_user, *pg_ctl],
                stdout=out,
                stderr=out,
            )
        if done.returncode:
            log = (self.root / "ctl.out").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"pg_ctl {' '.join(args)} failed ({done.returncode}):\n{log}")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c shared_buffers=16MB -c max_connections=60"
        )
        self.ctl("-l", str(self.root / "log"), "-o", options, "start")

    def stop(self) -> None:
        self.ctl("-m", "fast", "stop")

    def restart(self) -> None:
        self.ctl("-l", str(self.root / "log"), "-m", "fast", "restart")

    def psql(self, sql: str, db: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.url(db=db), autocommit=True) as conn:
            conn.execute(sql)


@contextmanager
def private_cluster() -> Iterator[Cluster]:
    if not (BIN / "initdb").exists():
        pytest.skip(f"no PostgreSQL server binaries in {BIN} (set WFE_TEST_PG_BIN)")
    root = Path(tempfile.mkdtemp(prefix="wfe-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to run a cluster as")
        os.chown(root, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    try:
        pwfile = root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if as_user:
            os.chown(pwfile, pwd.getpwnam("postgres").pw_uid, -1)
        subprocess.run(
            [
                *as_user,
                str(BIN / "initdb"),
                "-D",
                str(root / "data"),
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
        )
        cluster = Cluster(root, _free_port(), as_user)
        cluster.start()
        try:
            yield cluster
        finally:
            subprocess.run(
                [
                    *as_user,
                    str(BIN / "pg_ctl"),
                    "-D",
                    str(root / "data"),
                    "-m",
                    "immediate",
                    "stop",
                ],
                capture_output=True,
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)
