"""A private PostgreSQL 15 cluster for a campaign: ``initdb`` + ``pg_ctl`` in a temporary
directory on a free loopback port, with the server's default settings (autovacuum on)
but ``fsync=off`` (the campaign measures the engine, not the disk). Never the machine's
shared server. PostgreSQL refuses to run as root, so as root the cluster runs as the
``postgres`` user through ``runuser``.
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

BIN = Path(os.environ.get("WFE_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def private_postgres() -> Iterator[str]:
    """Start a cluster, yield its URL (database ``postgres``, trust auth on loopback),
    then stop it and remove its files."""
    if not (BIN / "initdb").exists():
        raise RuntimeError(f"no PostgreSQL server binaries in {BIN} (set WFE_TEST_PG_BIN)")
    root = Path(tempfile.mkdtemp(prefix="wfe-campaign-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(root, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", _free_port()
    pg_ctl = [*as_user, str(BIN / "pg_ctl"), "-D", str(data), "-w", "-t", "60"]
    try:
        initdb = [*as_user, str(BIN / "initdb"), "-D", str(data), "-U", "postgres"]
        subprocess.run([*initdb, "--auth=trust", "--no-sync"], check=True, capture_output=True)
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        # Output to a file, not a pipe: the server inherits it and runs on.
        with (root / "ctl.out").open("ab") as out:
            start = [*pg_ctl, "-l", str(root / "log"), "-o", options, "start"]
            subprocess.run(start, check=True, stdout=out, stderr=out)
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run([*pg_ctl, "-m", "fast", "stop"], capture_output=True, check=False)
    finally:
        shutil.rmtree(root, ignore_errors=True)
