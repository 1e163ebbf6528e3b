"""Writing every step's output lines to a store that keeps them (the optional
:class:`~wfe.core.protocols.StepLogStore` capability), so ``wfe logs`` reads them from
any machine.

The executor hands each line ``ctx.log`` sends to :meth:`StepLogWriter.add` as the
innermost sink (it sees the lines after every step middleware's sink, already masked of
secrets by YAML steps: ``ExecutorEnv.step_log``), which copies it into a buffer; a
task of the host writes the buffer in batches, one transaction per batch, never one
per line. Bounded: at most ``max_lines`` lines of ``max_line_length`` characters per
step attempt (then one line says the rest was not kept), and at most
``max_pending`` lines waiting for the store (then lines are dropped and one warning is
logged). Logs are an account, not state: lines still buffered when a process dies are
lost, and a failed write is logged and dropped rather than retried forever.
"""

from __future__ import annotations

import logging

import attrs
import trio

from wfe.core import Clock, StepExecutionContext
from wfe.core.protocols import StepLogLine, StepLogStore

log = logging.getLogger("wfe.host.steplogs")


@attrs.frozen(kw_only=True)
class StepLogLimits:
    """How much of each step's output a host keeps in a store with step logs."""

    max_lines: int = 10_000
    """Lines kept per step attempt (0: no step logs are written)."""
    max_line_length: int = 8_192
    """Longer lines are cut to this many characters."""
    batch: int = 500
    """Most lines written in one transaction."""
    max_pending: int = 100_000
    """Most lines waiting for the store; beyond, lines are dropped."""


class StepLogWriter:
    """The buffer and the batch writer of one host."""

    def __init__(self, store: StepLogStore, limits: StepLogLimits, clock: Clock) -> None:
        self._store = store
        self._limits = limits
        self._clock = clock
        self._pending: list[StepLogLine] = []
        self._counts: dict[tuple[str, int], int] = {}
        self._wake = trio.Event()
        self._dropping = False

    def add(self, ctx: StepExecutionContext, stream: str, line: str) -> None:
        """Keep one line ``ctx``'s step body logged, within the limits."""
        limits = self._limits
        key = (ctx.pointer.id, ctx.pointer.retry_count + 1)
        count = self._counts.get(key, 0)
        if not count and len(self._counts) >= 50_000:
            self._counts.clear()  # forget attempts long finished
        if count > limits.max_lines:
            return
        self._counts[key] = count + 1
        if count == limits.max_lines:
            stream = "log"
            line = (
                f"[wfe] this step attempt wrote more than {limits.max_lines:,} lines; "
                "the rest is not kept"
            )
        elif len(line) > limits.max_line_length:
            line = line[: limits.max_line_length] + " …[line cut]"
        if len(self._pending) >= limits.max_pending:
            if not self._dropping:
                log.warning("step log lines arrive faster than the store takes them; dropping")
            self._dropping = True
            return
        self._pending.append(
            StepLogLine(
                workflow_id=ctx.workflow.id,
                pointer_id=ctx.pointer.id,
                step_name=ctx.step.display_name,
                attempt=key[1],
                stream=stream,
                line=line,
                time=self._clock.now(),
            )
        )
        self._wake.set()

    async def serve(self) -> None:
        """Write batches until cancelled; then write what is left (shielded, briefly)."""
        try:
            while True:
                await self._wake.wait()
                self._wake = trio.Event()
                await self._flush()
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                await self._flush()

    async def _flush(self) -> None:
        while self._pending:
            batch = self._pending[: self._limits.batch]
            del self._pending[: self._limits.batch]
            self._dropping = False
            try:
                await self._store.append_step_logs(batch)
            except Exception as exc:  # logs must never stop a host
                log.warning("could not store %d step log lines: %s", len(batch), exc)
