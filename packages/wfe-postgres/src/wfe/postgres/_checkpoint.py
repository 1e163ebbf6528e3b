"""Checkpoints as ONE set-based statement, and group commit across concurrent ones.

A checkpoint (instance row, changed pointers, subscriptions opened and closed, events
processed and created, errors) is one ``WITH ... UPDATE/INSERT`` statement: the fence is
checked and raised by the ``UPDATE`` of the instance row, and every other part is written
only for the instances whose row that ``UPDATE`` accepted. The same statement carries
any number of instances' checkpoints (one array per column), so while every pooled
connection is busy, the checkpoints that arrive meanwhile are sent together by the next
free one. A stale checkpoint is simply not among the accepted rows: it changes nothing
and does not disturb the others. A batch that fails as a whole for another reason (an
event id that exists already, say) is retried one checkpoint at a time, so only the
faulty one fails.

When an instance's status changes, the statement also calls ``pg_notify`` with
``w:<id>``: PostgreSQL delivers it on commit, so a listener never hears of a status
before it can read it. When the store's own search index is the host's
(:class:`~wfe.core.protocols.IndexingPersistence`), the checkpoint that ends a workflow
also writes its search document; the last checkpoint of a pass may give the pass's
lease up (:class:`~wfe.core.protocols.ReleasingCheckpoint`).
"""

from __future__ import annotations

import re
from typing import Any

import attrs
import psycopg
import trio

from wfe.core import ProviderError, StaleLeaseError, WorkflowNotFoundError
from wfe.core.protocols import Checkpoint, Lease

from . import _codec as c
from ._database import Conn, Database
from ._search import DOCUMENT_CONFLICT, ENDED, document_terms

# The statement is assembled from parts: the instance rows (always) and each other part
# only when the batch has rows for it, so the usual checkpoint (row + two pointers) plans
# and binds 12 parameters, not 37. Each distinct shape is prepared once per connection.
_HEAD = """
WITH ck AS (
  SELECT * FROM unnest(%(c_id)s::text[], %(c_token)s::bigint[], %(c_description)s::text[],
    %(c_reference)s::text[], %(c_status)s::text[], %(c_data)s::json[],
    %(c_next)s::bigint[], %(c_done)s::bigint[])
  AS t(id, token, description, reference, status, data, next_execution, complete_time)
), fenced AS (
  UPDATE {s}.workflows w SET fence = COALESCE(ck.token, w.fence),
    description = ck.description, reference = ck.reference, status = ck.status,
    data = ck.data, next_execution = ck.next_execution, complete_time = ck.complete_time
  FROM ck, {s}.workflows old
  WHERE w.id = ck.id AND old.id = ck.id
    AND (ck.token IS NULL OR w.fence IS NULL OR w.fence <= ck.token)
  RETURNING w.id, w.status, old.status AS old_status
)"""
_PARTS = {
    "p": """, ptr AS (
  INSERT INTO {s}.pointers (id, workflow_id, sequence, body)
  SELECT p.id, p.owner, p.seq, p.body
  FROM unnest(%(p_owner)s::text[], %(p_id)s::text[], %(p_seq)s::int[], %(p_body)s::json[])
    AS p(owner, id, seq, body)
  WHERE p.owner IN (SELECT id FROM fenced)
  ON CONFLICT (id) DO UPDATE SET workflow_id = excluded.workflow_id,
    sequence = excluded.sequence, body = excluded.body
)""",
    "o": """, osub AS (
  INSERT INTO {s}.subscriptions
    (id, workflow_id, step_id, pointer_id, event_name, event_key, as_of, terminated)
  SELECT o.id, o.workflow_id, o.step_id, o.pointer_id, o.event_name, o.event_key,
    o.as_of, o.terminated
  FROM unnest(%(o_owner)s::text[], %(o_id)s::text[], %(o_workflow)s::text[],
    %(o_step)s::int[], %(o_pointer)s::text[], %(o_name)s::text[], %(o_key)s::text[],
    %(o_as_of)s::bigint[], %(o_terminated)s::boolean[])
    AS o(owner, id, workflow_id, step_id, pointer_id, event_name, event_key, as_of,
      terminated)
  WHERE o.owner IN (SELECT id FROM fenced)
  ON CONFLICT (id) DO UPDATE SET workflow_id = excluded.workflow_id,
    step_id = excluded.step_id, pointer_id = excluded.pointer_id,
    event_name = excluded.event_name, event_key = excluded.event_key,
    as_of = excluded.as_of, terminated = excluded.terminated
)""",
    "x": """, csub AS (
  UPDATE {s}.subscriptions s SET terminated = true
  FROM unnest(%(x_owner)s::text[], %(x_id)s::text[]) AS x(owner, id)
  WHERE s.id = x.id AND x.owner IN (SELECT id FROM fenced)
)""",
    "e": """, pev AS (
  UPDATE {s}.events e SET processed = true
  FROM unnest(%(e_owner)s::text[], %(e_id)s::text[]) AS x(owner, id)
  WHERE e.id = x.id AND x.owner IN (SELECT id FROM fenced)
)""",
    "r": """, err AS (
  INSERT INTO {s}.errors (workflow_id, pointer_id, time, message)
  SELECT r.workflow_id, r.pointer_id, r.time, r.message
  FROM unnest(%(r_owner)s::text[], %(r_workflow)s::text[], %(r_pointer)s::text[],
    %(r_time)s::bigint[], %(r_message)s::text[]) WITH ORDINALITY
    AS r(owner, workflow_id, pointer_id, time, message, n)
  WHERE r.owner IN (SELECT id FROM fenced) ORDER BY r.n
)""",
    "n": """, nev AS (
  INSERT INTO {s}.events (id, name, key, data, time, processed)
  SELECT n.id, n.name, n.key, n.data, n.time, n.processed
  FROM unnest(%(n_owner)s::text[], %(n_id)s::text[], %(n_name)s::text[],
    %(n_key)s::text[], %(n_data)s::json[], %(n_time)s::bigint[],
    %(n_processed)s::boolean[]) WITH ORDINALITY
    AS n(owner, id, name, key, data, time, processed, ord)
  WHERE n.owner IN (SELECT id FROM fenced) ORDER BY n.ord
)""",
    "l": """, rel AS (
  UPDATE {s}.locks k SET owner = NULL, expires_at = 0
  FROM unnest(%(l_owner)s::text[], %(l_resource)s::text[], %(l_holder)s::text[],
    %(l_token)s::bigint[]) AS l(owner, resource, holder, token)
  WHERE k.resource = l.resource AND k.owner = l.holder AND k.token = l.token
    AND l.owner IN (SELECT id FROM fenced)
)""",
    "s": """, sdoc AS (
  INSERT INTO {s}.search_documents AS sd (id, definition_id, version, status, reference,
    description, create_time, complete_time, data, document, fields)
  SELECT ck.id, d.definition_id, d.version, ck.status, ck.reference, ck.description,
    d.create_time, ck.complete_time, ck.data, to_tsvector('simple', d.words),
    ARRAY(SELECT json_array_elements_text(d.fields))
  FROM unnest(%(s_owner)s::text[], %(s_definition)s::text[], %(s_version)s::int[],
    %(s_create)s::bigint[], %(s_words)s::text[], %(s_fields)s::json[])
    AS d(owner, definition_id, version, create_time, words, fields)
  JOIN ck ON ck.id = d.owner
  WHERE d.owner IN (SELECT id FROM fenced)
  """
    + DOCUMENT_CONFLICT
    + """
)""",
}
_TAIL = """
SELECT f.id, CASE WHEN f.status IS DISTINCT FROM f.old_status
  THEN pg_notify(%(channel)s, 'w:' || f.id) END
FROM fenced f
"""


# One array parameter per column of each part, named by the part's letter.
_COLUMNS = (
    "c_id",
    "c_token",
    "c_description",
    "c_reference",
    "c_status",
    "c_data",
    "c_next",
    "c_done",
    "p_owner",
    "p_id",
    "p_seq",
    "p_body",
    "o_owner",
    "o_id",
    "o_workflow",
    "o_step",
    "o_pointer",
    "o_name",
    "o_key",
    "o_as_of",
    "o_terminated",
    "x_owner",
    "x_id",
    "e_owner",
    "e_id",
    "r_owner",
    "r_workflow",
    "r_pointer",
    "r_time",
    "r_message",
    "n_owner",
    "n_id",
    "n_name",
    "n_key",
    "n_data",
    "n_time",
    "n_processed",
    "l_owner",
    "l_resource",
    "l_holder",
    "l_token",
    "s_owner",
    "s_definition",
    "s_version",
    "s_create",
    "s_words",
    "s_fields",
)


@attrs.define
class Prepared:
    """One checkpoint's rows, converted (and checked) before it joins a batch."""

    workflow_id: str
    token: int | None
    rows: dict[str, list[Any]]


def prepare(
    checkpoint: Checkpoint, *, index_ended: bool = False, release: Lease | None = None
) -> Prepared:
    """Convert ``checkpoint`` to column arrays; raises DataSerializationError for data
    that cannot be stored (before anything is sent). ``index_ended``: a checkpoint that
    ends its workflow also writes the workflow's search document; ``release``: a lease
    of the store's lock provider given up by the checkpoint when it is stored (with
    ``index_ended``, such a checkpoint writes the document whatever the status: it
    ends a pass)."""
    inst = checkpoint.instance
    wid = inst.id
    # A checkpoint may carry the data already serialised (the executor checked it is
    # storable): then it is not serialised again.
    params = c.workflow_params(inst, getattr(checkpoint, "data_json", None))
    # Only the columns of the parts this checkpoint has rows for (see _execute).
    rows: dict[str, list[Any]] = {
        "c_id": [wid],
        "c_token": [checkpoint.fencing_token],
        "c_description": [params[3]],
        "c_reference": [params[4]],
        "c_status": [params[5]],
        "c_data": [params[6]],
        "c_next": [params[7]],
        "c_done": [params[9]],
    }

    def add(**values: Any) -> None:
        for name, value in values.items():
            rows.setdefault(name, []).append(value)

    # The last copy of a pointer listed twice wins (one INSERT cannot touch a row twice).
    latest = {p.id: p for p in checkpoint.pointers}
    if latest:
        rows["p_owner"] = [wid] * len(latest)
        rows["p_id"] = [c.text(ptr.id, "a pointer id") for ptr in latest.values()]
        rows["p_seq"] = [ptr.sequence for ptr in latest.values()]
        rows["p_body"] = [c.pointer_body(ptr) for ptr in latest.values()]
    closed = set(checkpoint.closed_subscriptions)
    opened = {s.id: s for s in checkpoint.opened_subscriptions}
    for sub in opened.values():
        sp = c.subscription_params(sub)
        # Opened and closed in one pass: the INSERT and the UPDATE of one statement do
        # not see each other's rows, so the closing is written into the new row.
        add(
            o_owner=wid,
            o_id=sp[0],
            o_workflow=sp[1],
            o_step=sp[2],
            o_pointer=sp[3],
            o_name=sp[4],
            o_key=sp[5],
            o_as_of=sp[6],
            o_terminated=sp[7] or sub.id in closed,
        )
    for sub_id in closed:
        add(x_owner=wid, x_id=sub_id)
    processed = set(checkpoint.processed_events)
    for event_id in processed:
        add(e_owner=wid, e_id=event_id)
    for err in checkpoint.errors:
        add(
            r_owner=wid,
            r_workflow=err.workflow_id,
            r_pointer=err.pointer_id,
            r_time=c.to_us(err.time),
            r_message=c.message(err.message),
        )
    for ev in checkpoint.events:
        ep = c.event_params(ev)
        add(
            n_owner=wid,
            n_id=ep[0],
            n_name=ep[1],
            n_key=ep[2],
            n_data=ep[3],
            n_time=ep[4],
            n_processed=ep[5] or ev.id in processed,
        )
    if release is not None:
        add(
            l_owner=wid,
            l_resource=release.resource,
            l_holder=release.owner,
            l_token=release.fencing_token,
        )
    if index_ended and (release is not None or inst.status in ENDED):
        words, fields = document_terms(inst)
        add(
            s_owner=wid,
            s_definition=inst.definition_id,
            s_version=inst.version,
            s_create=c.to_us(inst.create_time),
            s_words=words,
            s_fields=fields,
        )
    return Prepared(workflow_id=wid, token=checkpoint.fencing_token, rows=rows)


@attrs.define(eq=False)
class _Slot:
    prepared: Prepared
    done: trio.Event = attrs.field(factory=trio.Event)
    taken: bool = False
    error: BaseException | None = None

    def in_batch(self) -> bool:
        """Whether some task's flush took it (a call, so type checkers do not assume
        the value is unchanged across an ``await``)."""
        return self.taken


class GroupCommitter:
    """Sends concurrent checkpoints together, one statement per batch."""

    def __init__(self, db: Database, max_batch: int = 100) -> None:
        self._db = db
        self._max_batch = max_batch
        self._pending: list[_Slot] = []
        self._statements: dict[str, str] = {}  # by the parts they include
        self.batches = 0  # statements sent (for the benchmark's figures)
        self.checkpoints = 0

    async def persist(self, prepared: Prepared) -> None:
        """Store ``prepared`` in some batch; raise its own outcome."""
        slot = _Slot(prepared)
        self._pending.append(slot)
        try:
            while not slot.in_batch():
                async with self._db.limiter:
                    if slot.in_batch():
                        break
                    await self._flush(self._take_batch())
        except BaseException:
            if not slot.in_batch():
                self._pending.remove(slot)
                raise
            # Cancelled once its batch was taken: the batch's statement runs to the end,
            # so the checkpoint is stored or not as a whole; the caller sees the
            # cancellation either way.
            with trio.CancelScope(shield=True):
                await slot.done.wait()
            raise
        # Taken into a batch: its statement runs to the end (it cannot be abandoned
        # half-way), so wait for the outcome even when cancelled.
        with trio.CancelScope(shield=True):
            await slot.done.wait()
        if slot.error is not None:
            raise slot.error

    def _take_batch(self) -> list[_Slot]:
        batch: list[_Slot] = []
        seen: set[str] = set()
        rest: list[_Slot] = []
        for slot in self._pending:
            # Two checkpoints of one instance never share a statement: the second must
            # see the first's fence and row.
            if len(batch) < self._max_batch and slot.prepared.workflow_id not in seen:
                seen.add(slot.prepared.workflow_id)
                slot.taken = True
                batch.append(slot)
            else:
                rest.append(slot)
        self._pending = rest
        return batch

    async def _flush(self, batch: list[_Slot]) -> None:
        outcomes: list[BaseException | None] = []
        try:
            outcomes = await self._db.run_held(lambda conn: self._store(conn, batch))
        except Exception as exc:
            outcomes = [exc] * len(batch)
        except BaseException:
            # Cancelled between connection attempts (a statement in flight cannot be
            # interrupted): nothing of the batch was stored. The other callers get an
            # error of their own, not this task's cancellation.
            outcomes = [
                ProviderError(
                    f"PostgreSQL store, {self._db.label}: checkpoint not stored: the task "
                    "sending its batch was cancelled while waiting for the server"
                )
            ] * len(batch)
            raise
        finally:
            for slot, outcome in zip(batch, outcomes or [None] * len(batch), strict=True):
                slot.error = outcome
                slot.done.set()

    def _store(self, conn: Conn, batch: list[_Slot]) -> list[BaseException | None]:
        """On the connection: the batch in one statement, else one by one."""
        self.batches += 1
        self.checkpoints += len(batch)
        try:
            return self._execute(conn, [slot.prepared for slot in batch])
        except psycopg.Error as exc:
            if conn.broken or len(batch) == 1:
                raise
            del exc  # one of them is faulty: find out which, alone
        outcomes: list[BaseException | None] = []
        for slot in batch:
            try:
                outcomes.extend(self._execute(conn, [slot.prepared]))
            except psycopg.Error as exc:
                if conn.broken:
                    raise
                outcomes.append(self._db.error(exc))
        return outcomes

    def _execute(self, conn: Conn, items: list[Prepared]) -> list[BaseException | None]:
        if len(items) == 1:
            rows = items[0].rows
            params: dict[str, Any] = {name: rows[name] for name in _COLUMNS if name in rows}
        else:
            params = {}
            for name in _COLUMNS:
                values = [v for item in items for v in item.rows.get(name, ())]
                if values:
                    params[name] = values
        shape = "".join(part for part in _PARTS if f"{part}_owner" in params)
        counts = tuple(len(params[f"{part}_owner"]) for part in shape)
        if len(items) == 1 and max(counts, default=0) <= _MAX_VALUES_ROWS:
            # One checkpoint alone: its rows as scalar parameters, which the server
            # runs in about 60 % of the time of the arrays (measured).
            key = f"{shape}:{counts}"
            params = _scalars(params)
        else:
            key = shape
        sql = self._statements.get(key)
        if sql is None:
            sql = _HEAD + "".join(_PARTS[part] for part in shape) + _TAIL
            if key != shape:
                sql = _values_form(sql, {"c": 1, **dict(zip(shape, counts, strict=True))})
            sql = self._statements[key] = _binary(self._db.q(sql))
        params["channel"] = self._db.settings.channel
        accepted = {row[0] for row in conn.execute(sql, params).fetchall()}
        refused = [item for item in items if item.workflow_id not in accepted]
        fences: dict[str, int | None] = {}
        if refused:
            fences = dict(
                conn.execute(
                    self._db.q("SELECT id, fence FROM {s}.workflows WHERE id = ANY(%s)"),
                    ([item.workflow_id for item in refused],),
                ).fetchall()
            )
        label = self._db.label
        outcomes: list[BaseException | None] = []
        for item in items:
            wid = item.workflow_id
            if wid in accepted:
                outcomes.append(None)
            elif wid in fences:
                outcomes.append(refused_error(label, wid, item.token, fences[wid]))
            else:
                outcomes.append(
                    WorkflowNotFoundError(f"no workflow {wid} in PostgreSQL store, {label}")
                )
        return outcomes


_PLACEHOLDER = re.compile(r"%\((\w+)\)s")

# A checkpoint alone in its batch is sent in the scalar form while no part has more
# rows than this (the usual one: the instance row and two pointers); each distinct
# count of rows is one more prepared statement per connection, so a checkpoint with
# many rows (a wide parallel step) keeps the arrays.
_MAX_VALUES_ROWS = 8

# ``unnest(%(a)s::T[], ...) [WITH ORDINALITY] AS alias(`` of a statement part.
_UNNEST = re.compile(
    r"unnest\(((?:%\(\w+\)s::\w+\[\],?\s*)+)\)(\s+WITH ORDINALITY)?(\s+AS\s+\w+\()"
)
_ARRAY_PARAM = re.compile(r"%\((\w+)\)s::(\w+)\[\]")


def _values_form(sql: str, counts: dict[str, int]) -> str:
    """``sql`` with each part's ``unnest`` of arrays replaced by a ``VALUES`` list of
    ``counts[part]`` rows of scalar parameters (``%(name__i)s``), each cast as its array's
    elements were; ``WITH ORDINALITY`` becomes the row number as a last column."""

    def rows(match: re.Match[str]) -> str:
        columns = _ARRAY_PARAM.findall(match.group(1))
        part = columns[0][0].split("_", 1)[0]
        lines = []
        for i in range(counts[part]):
            cells = [f"%({name}__{i})s::{kind}" for name, kind in columns]
            if match.group(2):
                cells.append(str(i + 1))
            lines.append(f"({', '.join(cells)})")
        return f"(VALUES {', '.join(lines)}){match.group(3)}"

    return _UNNEST.sub(rows, sql)


def _scalars(params: dict[str, list[Any]]) -> dict[str, Any]:
    """The arrays of :func:`_execute` as the scalars :func:`_values_form` names."""
    return {f"{name}__{i}": v for name, values in params.items() for i, v in enumerate(values)}


def _binary(sql: str) -> str:
    """``sql`` with its parameters sent in binary (``%(name)b``): psycopg then writes
    each array without quoting and escaping every element, as the text format must (the
    JSON bodies are full of quotes): ~70 µs of CPU per checkpoint instead of ~210 µs,
    measured. The statement's casts (``::json[]``, ``::bigint[]``) accept the binary
    arrays' element types (text, the smallest integer type that fits)."""
    return _PLACEHOLDER.sub(r"%(\1)b", sql)


def refused_error(label: str, workflow_id: str, token: int | None, fence: Any) -> ProviderError:
    """The error for a write refused by the fence (``fence`` is the stored token)."""
    return StaleLeaseError(
        f"workflow {workflow_id}: write with fencing token {token} refused: the lease "
        f"passed to a holder with token {fence} (PostgreSQL store, {label})"
    )
