"""The OpenSearch search index provider."""

from __future__ import annotations

import importlib
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

import trio

from wfe.core import ConfigurationError, ProviderError, WorkflowInstance, redact_url
from wfe.core.protocols import Page, SearchFilters

from ._config import Settings, parse_url
from ._documents import MAPPING, document, page, search_body

log = logging.getLogger("wfe.opensearch")

T = TypeVar("T")

# Statuses worth retrying: the cluster is overloaded or (re)starting.
_TRANSIENT_STATUS = {408, 429, 502, 503, 504}


class _Transient(Exception):
    """A failure that goes away by itself (server down, busy or restarting)."""


class OpenSearchIndex:
    """Search over workflow instances kept in an OpenSearch index.

    ``OpenSearchIndex("opensearch://user:pw@search:9200/wfe-workflows")``; the
    ``opensearch+https`` scheme uses TLS. On entry the index is created with an
    explicit mapping if it does not exist (several hosts may race; that is fine).
    Writes are bulk requests retried with backoff while the server is unreachable
    or busy, so a host's index consumer waits out an outage without losing documents
    and without holding up workflows. Searches are not retried: the caller gets a
    :class:`ProviderError` at once. Terms match like every wfe store's index:
    case-insensitively, each term as a (phrase) prefix, every term required.
    """

    def __init__(
        self,
        url: str = "opensearch://localhost:9200",
        *,
        batch_size: int = 500,
        max_backoff: float = 30.0,
        connections: int = 4,
        **options: Any,
    ) -> None:
        self.settings: Settings = parse_url(url, **options)
        if batch_size < 1 or connections < 1 or not max_backoff > 0:
            raise ConfigurationError(
                "OpenSearch batch_size and connections must be at least 1 and "
                f"max_backoff positive, got {batch_size}, {connections} and {max_backoff}"
            )
        self.batch_size = batch_size
        self.max_backoff = max_backoff
        self._limiter = trio.CapacityLimiter(connections)
        self._client: Any = None
        self._errors: Any = None
        self._ready = False

    def __repr__(self) -> str:
        return f"OpenSearchIndex({self.settings.where!r})"

    # -- connection ---------------------------------------------------------------

    async def __aenter__(self) -> Self:
        # opensearch-py takes ~0.6 s to import: only when an index is actually used,
        # and off the trio loop.
        module = await trio.to_thread.run_sync(importlib.import_module, "opensearchpy")
        self._errors = importlib.import_module("opensearchpy.exceptions")
        s = self.settings
        self._client = module.OpenSearch(
            hosts=[{"host": s.host, "port": s.port}],
            http_auth=(s.username, s.password or "") if s.username else None,
            use_ssl=s.use_ssl,
            verify_certs=s.verify_certs,
            ca_certs=s.ca_certs,
            timeout=s.timeout,
            max_retries=0,
            retry_on_timeout=False,
        )
        try:
            await self._ensure_index()
        except _Transient as exc:
            # Do not stop the host for a search server that is down: documents wait
            # in the index queue, and the index is created before the first write.
            log.warning(
                "search index %s is unreachable (%s); it is created when it comes back",
                s.where,
                exc,
            )
        except BaseException:
            await self._close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close()

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(client.close)

    async def _call(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn(client)`` in a worker thread, translating the client's errors."""
        client = self._client
        if client is None:
            raise ConfigurationError(f"{self!r} is not open: use it inside 'async with'")
        errors = self._errors

        def run() -> T:
            try:
                return fn(client)
            except errors.ConnectionError as exc:  # also timeouts
                raise _Transient(self._say(exc)) from None
            except errors.TransportError as exc:
                status = exc.status_code if isinstance(exc.status_code, int) else 0
                if status in _TRANSIENT_STATUS:
                    raise _Transient(f"HTTP {status}: {self._say(exc)}") from None
                if status in (401, 403):
                    raise ConfigurationError(
                        f"OpenSearch at {self.settings.where} refused the request "
                        f"(HTTP {status}): check the user name and password"
                    ) from None
                raise ProviderError(
                    f"OpenSearch at {self.settings.where} failed (HTTP {status}): {self._say(exc)}"
                ) from None

        return await trio.to_thread.run_sync(run, limiter=self._limiter)

    def _say(self, exc: BaseException) -> str:
        """``exc`` as text, never with the password, bounded."""
        text = redact_url(str(exc), self.settings.url)
        if self.settings.password:
            text = text.replace(self.settings.password, "***")
        return text[:300]

    async def _retrying(self, op: Callable[[], Awaitable[T]]) -> T:
        """``await op()``, retried with capped exponential backoff while transient."""
        delay = 0.05
        failures = 0
        while True:
            try:
                result = await op()
            except _Transient as exc:
                failures += 1
                if failures == 1 or delay >= self.max_backoff:
                    log.warning(
                        "search index %s unreachable (%s); retrying in %.1f s",
                        self.settings.where,
                        exc,
                        delay,
                    )
                await trio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, self.max_backoff)
                continue
            if failures:
                log.warning("search index %s reachable again", self.settings.where)
            return result

    async def _ensure_index(self) -> None:
        name = self.settings.index
        errors = self._errors

        def ensure(client: Any) -> None:
            if not client.indices.exists(index=name):
                try:
                    client.indices.create(index=name, body={"mappings": MAPPING})
                    return
                except errors.RequestError as exc:
                    if "resource_already_exists_exception" not in str(exc.error):
                        raise
            mapping: dict[str, Any] = client.indices.get_mapping(index=name)
            first: dict[str, Any] = next(iter(mapping.values()), {})
            fields: dict[str, Any] = first.get("mappings", {}).get("properties", {})
            wrong = [
                field
                for field, spec in MAPPING["properties"].items()
                if field in fields and fields[field].get("type") != spec["type"]
            ]
            if wrong or "id" not in fields:
                raise ConfigurationError(
                    f"OpenSearch index {name!r} at {self.settings.where} exists with "
                    f"another mapping (fields {', '.join(wrong or ['id'])} differ): it was "
                    "not made by wfe; give wfe an index of its own"
                )
            missing = {f: spec for f, spec in MAPPING["properties"].items() if f not in fields}
            if missing:
                # Made by an earlier wfe: new fields can be added to a mapping in place.
                client.indices.put_mapping(index=name, body={"properties": missing})

        await self._call(ensure)
        self._ready = True

    # -- the SearchIndex protocol -------------------------------------------------------

    async def index(self, instance: WorkflowInstance) -> None:
        """Add ``instance`` to the index, replacing its earlier document."""
        await self.index_many([instance])

    async def index_many(self, instances: Sequence[WorkflowInstance]) -> None:
        """Index several instances with bulk requests (the last of one id wins).

        Returns once every document is stored; retries while the server is down or
        busy. A document the server refuses for good raises :class:`ProviderError`
        naming the instances (the others are stored)."""
        docs = {i.id: document(i) for i in instances}
        pending = list(docs.items())
        while pending:
            batch, pending = pending[: self.batch_size], pending[self.batch_size :]
            await self._bulk(dict(batch))

    async def _bulk(self, docs: dict[str, dict[str, Any]]) -> None:
        refused: list[str] = []
        while docs:
            if not self._ready:
                await self._retrying(self._ensure_index)
            body: list[dict[str, Any]] = []
            for doc_id, doc in docs.items():
                body.append({"index": {"_index": self.settings.index, "_id": doc_id}})
                body.append(doc)
            response = await self._retrying(
                lambda b=body: self._call(lambda client: client.bulk(body=b))  # type: ignore[misc]
            )
            retry: dict[str, dict[str, Any]] = {}
            for item in response.get("items", []):
                result = item.get("index", {})
                status = result.get("status", 0)
                doc_id = result.get("_id")
                if 200 <= status < 300 or doc_id not in docs:
                    continue
                if status in _TRANSIENT_STATUS:
                    retry[doc_id] = docs[doc_id]
                elif status == 404:
                    # The index was deleted under us: create it again and resend.
                    self._ready = False
                    retry[doc_id] = docs[doc_id]
                else:
                    reason = str(result.get("error", {}).get("reason", ""))[:200]
                    refused.append(f"{doc_id} (HTTP {status}: {reason})")
            if retry:
                await trio.sleep(random.uniform(0.05, 0.2))
            docs = retry
        if refused:
            raise ProviderError(
                f"OpenSearch at {self.settings.where} refused documents: {'; '.join(refused)}"
            )

    async def remove(self, workflow_ids: Sequence[str]) -> None:
        """Delete the documents of ``workflow_ids`` (bulk; unknown ids are fine)."""
        ids = list(dict.fromkeys(workflow_ids))
        while ids:
            batch, ids = ids[: self.batch_size], ids[self.batch_size :]
            body = [{"delete": {"_index": self.settings.index, "_id": i}} for i in batch]
            if not self._ready:
                await self._retrying(self._ensure_index)
            response = await self._retrying(
                lambda b=body: self._call(lambda client: client.bulk(body=b))  # type: ignore[misc]
            )
            refused = [
                f"{r.get('_id')} (HTTP {r.get('status')})"
                for item in response.get("items", [])
                for r in [item.get("delete", {})]
                if r.get("status", 0) >= 300 and r.get("status") != 404
            ]
            if refused:
                raise ProviderError(
                    f"OpenSearch at {self.settings.where} did not delete: {'; '.join(refused)}"
                )

    async def search(
        self,
        terms: str,
        filters: SearchFilters | None = None,
        skip: int = 0,
        take: int = 100,
    ) -> Page:
        """The page of matches ``skip`` .. ``skip + take``, newest first, and the total."""
        body = search_body(terms, filters, skip, take)
        name = self.settings.index
        try:
            if not self._ready:
                await self._ensure_index()
            response = await self._call(lambda client: client.search(index=name, body=body))
        except _Transient as exc:
            raise ProviderError(
                f"searching OpenSearch at {self.settings.where} failed: {exc}"
            ) from None
        return page(response)

    async def refresh(self) -> None:
        """Make every document indexed so far visible to searches (OpenSearch does
        this by itself about once a second)."""
        name = self.settings.index
        if not self._ready:
            await self._retrying(self._ensure_index)
        await self._retrying(lambda: self._call(lambda c: c.indices.refresh(index=name)))
