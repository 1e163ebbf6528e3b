"""A small OpenSearch-compatible HTTP server for the provider's tests.

It implements only what :class:`wfe.opensearch.OpenSearchIndex` calls — index
existence, creation with a mapping, the mapping, `_bulk`, `_refresh` and `_search`
with the query DSL the provider sends — and it is strict: a request of another
shape (an unknown query clause, a document field outside the strict mapping, a bulk
action other than `index`) is answered with the 400 error OpenSearch would give,
so a provider change the real server would refuse fails here too. Every request is
recorded for tests to inspect. Documents become visible to searches only after a
refresh, as on a real server.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs

Json = dict[str, Any]


@attrs.define
class Request:
    method: str
    path: str
    body: Any


def tokens(text: str) -> list[str]:
    """Lower-case words, as OpenSearch's standard analyser splits ASCII text."""
    return re.findall(r"\w+", text.lower())


class _Refused(Exception):
    def __init__(self, status: int, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.kind, self.reason = status, kind, reason


@attrs.define
class Index:
    mapping: Json
    stored: dict[str, Json] = attrs.Factory(dict)
    visible: dict[str, Json] = attrs.Factory(dict)
    seq: dict[str, int] = attrs.Factory(dict)


class FakeOpenSearch:
    """``with FakeOpenSearch() as server:`` serves on ``server.url`` (127.0.0.1)."""

    def __init__(self, users: dict[str, str] | None = None) -> None:
        self.users = users
        self.indices: dict[str, Index] = {}
        self.requests: list[Request] = []
        self.unavailable = False  # answer every request with 503
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"opensearch://127.0.0.1:{self.port}"

    def __enter__(self) -> FakeOpenSearch:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Listen (again, on the same port once one was chosen)."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def setup(self) -> None:
                super().setup()
                with fake.lock:
                    fake._connections.add(self.connection)

            def finish(self) -> None:
                with fake.lock:
                    fake._connections.discard(self.connection)
                super().finish()

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, body = fake.handle(self.command, self.path, raw, self.headers)
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _serve

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop listening and drop open connections: the server is gone until
        :meth:`start`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self.lock:
            open_ones, self._connections = list(self._connections), set()
        for conn in open_ones:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def of(self, method: str, suffix: str) -> Iterator[Request]:
        """The recorded requests of ``method`` whose path ends with ``suffix``."""
        with self.lock:
            recorded = list(self.requests)
        return (r for r in recorded if r.method == method and r.path.endswith(suffix))

    # -- requests -----------------------------------------------------------------

    def handle(self, method: str, path: str, raw: bytes, headers: Any) -> tuple[int, Any]:
        path = path.split("?", 1)[0]
        if self.unavailable:
            return 503, _error(503, "cluster_block_exception", "the cluster is unavailable")
        if self.users is not None and not self._authorised(headers.get("Authorization")):
            return 401, _error(401, "security_exception", "missing or wrong credentials")
        try:
            body = _parse(raw, ndjson=path.endswith("/_bulk"))
        except ValueError as exc:
            return 400, _error(400, "parse_exception", str(exc))
        with self.lock:
            self.requests.append(Request(method, path, body))
            try:
                return self._route(method, path.strip("/").split("/"), body)
            except _Refused as exc:
                return exc.status, _error(exc.status, exc.kind, exc.reason)

    def _authorised(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return self.users is not None and self.users.get(user) == password

    def _route(self, method: str, parts: list[str], body: Any) -> tuple[int, Any]:
        if parts == [""] and method == "GET":
            return 200, {"version": {"distribution": "opensearch", "number": "2.19.0"}}
        if parts == ["_bulk"] and method in ("POST", "PUT"):
            return 200, self._bulk(body)
        name = parts[0]
        index = self.indices.get(name)
        if len(parts) == 1 and method == "HEAD":
            return (200 if index else 404), None
        if len(parts) == 1 and method == "PUT":
            return 200, self._create(name, body)
        if index is None:
            raise _Refused(404, "index_not_found_exception", f"no such index [{name}]")
        if parts[1:] == ["_mapping"] and method == "GET":
            return 200, {name: {"mappings": index.mapping}}
        if parts[1:] == ["_mapping"] and method == "PUT":
            added = (body or {}).get("properties", {})
            if set(added) & set(index.mapping["properties"]) or set(body or {}) != {"properties"}:
                raise _Refused(400, "illegal_argument_exception", "mapping update conflicts")
            index.mapping["properties"].update(added)
            return 200, {"acknowledged": True}
        if parts[1:] == ["_refresh"] and method in ("POST", "GET"):
            index.visible = dict(index.stored)
            return 200, {"_shards": {"total": 1, "successful": 1, "failed": 0}}
        if parts[1:] == ["_search"] and method in ("POST", "GET"):
            return 200, self._search(index, body)
        raise _Refused(
            400, "illegal_argument_exception", f"unsupported {method} /{'/'.join(parts)}"
        )

    def _create(self, name: str, body: Any) -> Json:
        if name in self.indices:
            raise _Refused(400, "resource_already_exists_exception", f"index [{name}] exists")
        if not isinstance(body, dict) or set(body) != {"mappings"}:
            raise _Refused(400, "parse_exception", "expected a body with only 'mappings'")
        mapping = body["mappings"]
        if mapping.get("dynamic") != "strict" or not isinstance(mapping.get("properties"), dict):
            raise _Refused(400, "mapper_parsing_exception", "expected a strict mapping")
        for field, spec in mapping["properties"].items():
            if spec.get("type") not in {"keyword", "text", "integer", "long", "date"}:
                raise _Refused(400, "mapper_parsing_exception", f"bad type for [{field}]")
        self.indices[name] = Index(mapping=mapping)
        return {"acknowledged": True, "index": name}

    def _bulk(self, lines: list[Json]) -> Json:
        items = []
        rest = list(lines)
        while rest:
            action = rest.pop(0)
            if set(action) == {"delete"}:
                items.append({"delete": self._delete(action["delete"])})
                continue
            if set(action) != {"index"} or not rest:
                raise _Refused(400, "illegal_argument_exception", f"unexpected action {action}")
            items.append({"index": self._store(action["index"], rest.pop(0))})
        errors = any(next(iter(i.values()))["status"] >= 300 for i in items)
        return {"took": 1, "errors": errors, "items": items}

    def _delete(self, meta: Json) -> Json:
        index = self.indices.get(meta.get("_index", ""))
        result: Json = {"_index": meta.get("_index"), "_id": meta.get("_id")}
        if index is None:
            return {**result, "status": 404, "error": {"type": "index_not_found_exception"}}
        found = index.stored.pop(meta.get("_id", ""), None) is not None
        return {**result, "status": 200 if found else 404}

    def _store(self, meta: Json, doc: Json) -> Json:
        index = self.indices.get(meta.get("_index", ""))
        doc_id = meta.get("_id")
        result: Json = {"_index": meta.get("_index"), "_id": doc_id}
        if index is None:
            result.update(status=404, error={"type": "index_not_found_exception"})
        elif not doc_id:
            result.update(status=400, error={"type": "action_request_validation_exception"})
        elif unknown := set(doc) - set(index.mapping["properties"]):
            result.update(
                status=400,
                error={
                    "type": "strict_dynamic_mapping_exception",
                    "reason": f"mapping set to strict, field {sorted(unknown)[0]} not allowed",
                },
            )
        else:
            created = doc_id not in index.stored
            index.stored[doc_id] = doc
            index.seq[doc_id] = len(index.seq) + 1
            result.update(status=201 if created else 200)
        return result

    # -- search ---------------------------------------------------------------------

    def _search(self, index: Index, body: Any) -> Json:
        allowed = {"query", "sort", "from", "size", "track_total_hits"}
        if not isinstance(body, dict) or set(body) - allowed:
            raise _Refused(400, "parsing_exception", f"unknown keys {set(body) - allowed}")
        query = body.get("query", {"match_all": {}})
        hits = [d for d in index.visible.values() if self._matches(index, d, query)]
        for clause in reversed(body.get("sort", [])):
            ((field, spec),) = clause.items()
            reverse = spec.get("order") == "desc"
            present = [d for d in hits if d.get(field) is not None]
            missing = [d for d in hits if d.get(field) is None]
            hits = sorted(present, key=lambda d: d[field], reverse=reverse) + missing
        start, size = int(body.get("from", 0)), int(body.get("size", 10))
        total = len(hits)
        return {
            "took": 1,
            "timed_out": False,
            "hits": {
                "total": {"value": total, "relation": "eq"},
                "hits": [{"_id": d["id"], "_source": d} for d in hits[start : start + size]],
            },
        }

    def _matches(self, index: Index, doc: Json, query: Json) -> bool:
        ((kind, spec),) = query.items()
        if kind == "match_all":
            return True
        if kind == "bool":
            if set(spec) - {"must", "filter"}:
                raise _Refused(400, "parsing_exception", f"unsupported bool keys {set(spec)}")
            return all(self._matches(index, doc, q) for q in spec.get("must", [])) and all(
                self._matches(index, doc, q) for q in spec.get("filter", [])
            )
        if kind == "match_phrase_prefix":
            ((field, options),) = spec.items()
            return self._phrase_prefix(index, doc, field, options["query"])
        if kind == "term":
            ((field, value),) = spec.items()
            self._require(index, field, {"keyword", "integer", "long"})
            have = doc.get(field)
            if isinstance(have, list):  # a multi-valued field matches any of its values
                return value in have
            return have is not None and have == value
        if kind == "range":
            ((field, bounds),) = spec.items()
            self._require(index, field, {"long", "integer", "date"})
            value = doc.get(field)
            if value is None or set(bounds) - {"gte", "lte"}:
                return False
            return bounds.get("gte", value) <= value <= bounds.get("lte", value)
        raise _Refused(400, "parsing_exception", f"unknown query [{kind}]")

    def _require(self, index: Index, field: str, types: set[str]) -> None:
        spec = index.mapping["properties"].get(field)
        if spec is None or spec["type"] not in types:
            raise _Refused(400, "query_shard_exception", f"field [{field}] cannot be queried so")

    def _phrase_prefix(self, index: Index, doc: Json, field: str, query: str) -> bool:
        self._require(index, field, {"text"})
        words = tokens(query)
        if not words:
            return False
        props = index.mapping["properties"]
        sources = [f for f, s in props.items() if s.get("copy_to") == field] + [field]
        for source in sources:
            value = doc.get(source)
            if value is None:
                continue
            have = tokens(str(value))
            n = len(words)
            for i in range(len(have) - n + 1):
                if have[i : i + n - 1] == words[:-1] and have[i + n - 1].startswith(words[-1]):
                    return True
        return False


def _parse(raw: bytes, *, ndjson: bool) -> Any:
    if not raw:
        return None
    text = raw.decode()
    if ndjson:
        if not text.endswith("\n"):
            raise ValueError("the bulk request must be terminated by a newline")
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return json.loads(text)


def _error(status: int, kind: str, reason: str) -> Json:
    return {
        "error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason},
        "status": status,
    }
