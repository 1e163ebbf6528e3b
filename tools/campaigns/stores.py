"""The stores a campaign runs on, shared by ``tools/chaos.py`` and ``tools/soak.py``.

``sqlite``: a fresh SQLite file in the run's temporary directory (the store's own
locks and queues). ``postgres``: a fresh schema on the PostgreSQL server (dropped
afterwards) with Valkey locks and queues under a fresh key prefix on the Valkey/Redis
server (its keys deleted afterwards). Nothing is restarted or reconfigured on the
servers: other work shares them.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from wfe.host import WorkflowHostBuilder

PG_URL = os.environ.get("WFE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
VALKEY_URL = os.environ.get("WFE_TEST_VALKEY_URL", "redis://127.0.0.1:6379/0")
STORES = ("sqlite", "postgres")

# Short enough that a killed host's work is taken over within seconds, long enough
# that a loaded machine's renewals keep it.
LEASE_TTL = timedelta(seconds=2)
POLL = timedelta(milliseconds=500)
PER_HOST = 16  # workflows one host runs at once: a kill interrupts at most this many steps


@dataclass(frozen=True)
class Store:
    """Where one run keeps its workflows: ``argv()`` passes it to a host process."""

    kind: str
    url: str
    valkey: str = "-"
    prefix: str = "-"

    def argv(self) -> list[str]:
        return [self.kind, self.url, self.valkey, self.prefix]

    @classmethod
    def from_argv(cls, argv: list[str]) -> Store:
        kind, url, valkey, prefix = argv[:4]
        return cls(kind, url, valkey, prefix)

    def builder(self) -> WorkflowHostBuilder:
        """A host builder on this store (with Valkey locks and queues for postgres)."""
        builder = WorkflowHostBuilder().persistence(self.url).lease_ttl(LEASE_TTL)
        builder = builder.poll_interval(POLL).max_concurrent_workflows(PER_HOST)
        if self.kind == "postgres":
            from wfe.valkey import ValkeyLockProvider, ValkeyQueueProvider

            builder = builder.locks(ValkeyLockProvider(self.valkey, prefix=self.prefix))
            builder = builder.queues(ValkeyQueueProvider(self.valkey, prefix=self.prefix))
        return builder

    @property
    def server(self) -> str:
        """The PostgreSQL server's URL, without the store's schema option."""
        return self.url.split("schema=")[0].rstrip("?&")

    def size_bytes(self) -> int:
        """The database's size: the SQLite file with its WAL and shared memory, or the
        total relation size (tables, indexes, TOAST) of the schema's tables."""
        if self.kind == "sqlite":
            path = Path(self.url.removeprefix("sqlite:///"))
            names = (path, Path(f"{path}-wal"), Path(f"{path}-shm"))
            return sum(p.stat().st_size for p in names if p.exists())
        import psycopg

        schema = self.url.rsplit("schema=", 1)[1]
        with psycopg.connect(self.server) as conn:
            row = conn.execute(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = %s AND c.relkind IN ('r', 'p')",
                (schema,),
            ).fetchone()
        return int(row[0]) if row else 0


@contextmanager
def open_store(kind: str, tmp: Path, pg_url: str = PG_URL) -> Iterator[Store]:
    """A fresh store of ``kind`` for one run (on the PostgreSQL server ``pg_url``),
    removed from the servers afterwards."""
    if kind == "sqlite":
        yield Store("sqlite", f"sqlite:///{tmp / 'campaign.db'}")
        return
    if kind != "postgres":
        raise ValueError(f"--store must be one of {', '.join(STORES)}, got {kind!r}")
    import psycopg
    import valkey

    token = secrets.token_hex(5)
    schema = f"campaign_{token}"
    sep = "&" if "?" in pg_url else "?"
    store = Store("postgres", f"{pg_url}{sep}schema={schema}", VALKEY_URL, f"wfe-campaign:{token}:")
    try:
        yield store
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        client = valkey.Valkey.from_url(VALKEY_URL)
        try:
            keys = list(client.scan_iter(match=store.prefix + "*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()  # type: ignore[no-untyped-call]  # valkey-py lacks the annotation


def rss_bytes(pid: int) -> int:
    """A live process's resident set size (0 once it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0
