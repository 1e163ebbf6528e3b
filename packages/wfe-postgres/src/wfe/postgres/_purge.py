"""Retention: deleting ended instances and processed events in bounded batches, each
batch one statement (so one transaction)."""

from __future__ import annotations

from wfe.core.primitives import CHILD_FINISHED_EVENT

from ._lock import NOW_US

# Ended = the complete time, or the create time of a suspended instance (never set).
_ENDED = "COALESCE(complete_time, create_time)"
_WHERE = f"status = ANY(%(st)s::text[]) AND {_ENDED} < %(before)s"

COUNT = f"SELECT count(*) FROM {{s}}.workflows WHERE {_WHERE}"

# FOR UPDATE re-checks status and age once a row's lock is granted, so an instance
# resumed meanwhile stays; SKIP LOCKED leaves rows being written now for a later batch.
# Lease rows keep a resource's fencing counter while its instance exists; with the
# instance gone no write can be fenced any more, so a free one goes too (the host names
# its leases wfe:workflow:<id>). A child's notice to its parent is stored with its end
# even when no parent waits yet: one never taken goes with the child, and its free event
# lease row too unless processed notices of it are left (the CTEs see the events as they
# were before this statement: hence "processed" there). Search documents go through
# SearchIndex.remove.
WORKFLOWS = f"""
WITH doomed AS MATERIALIZED (
  SELECT id FROM {{s}}.workflows WHERE {_WHERE}
  ORDER BY {_ENDED}, id LIMIT %(n)s FOR UPDATE SKIP LOCKED
), p AS (DELETE FROM {{s}}.pointers WHERE workflow_id IN (SELECT id FROM doomed)
), sub AS (DELETE FROM {{s}}.subscriptions WHERE workflow_id IN (SELECT id FROM doomed)
), err AS (DELETE FROM {{s}}.errors WHERE workflow_id IN (SELECT id FROM doomed)
), lg AS (DELETE FROM {{s}}.step_logs WHERE workflow_id IN (SELECT id FROM doomed)
), lk AS (DELETE FROM {{s}}.locks WHERE (owner IS NULL OR expires_at < {NOW_US})
  AND resource IN (SELECT 'wfe:workflow:' || id FROM doomed)
), nt AS (DELETE FROM {{s}}.events WHERE NOT processed AND name = '{CHILD_FINISHED_EVENT}'
  AND key IN (SELECT id FROM doomed)
), ek AS (DELETE FROM {{s}}.locks WHERE (owner IS NULL OR expires_at < {NOW_US})
  AND resource IN (SELECT 'wfe:event:{CHILD_FINISHED_EVENT}:' || d.id FROM doomed d
  WHERE NOT EXISTS (SELECT 1 FROM {{s}}.events e WHERE e.name = '{CHILD_FINISHED_EVENT}'
  AND e.key = d.id AND e.processed))
)
DELETE FROM {{s}}.workflows WHERE id IN (SELECT id FROM doomed) RETURNING id, {_ENDED}
"""

# The host's event leases (wfe:event:<name>:<key>) only keep deliveries of one name and
# key apart, their tokens fence no write: once no event of that name and key is left, a
# free one goes too, else a row per key ever published would stay for good. (The CTEs
# see the events as they were before this statement: hence "not one of those gone".)
EVENTS = f"""
WITH gone AS (
  DELETE FROM {{s}}.events WHERE id IN (SELECT id FROM {{s}}.events
  WHERE processed AND time < %(before)s ORDER BY time LIMIT %(n)s) RETURNING id, name, key
), lk AS (
  DELETE FROM {{s}}.locks WHERE (owner IS NULL OR expires_at < {NOW_US}) AND resource IN (
    SELECT 'wfe:event:' || g.name || ':' || g.key FROM gone g WHERE NOT EXISTS (
      SELECT 1 FROM {{s}}.events e WHERE e.name = g.name AND e.key = g.key
      AND e.id NOT IN (SELECT id FROM gone)))
)
SELECT count(*) FROM gone
"""
