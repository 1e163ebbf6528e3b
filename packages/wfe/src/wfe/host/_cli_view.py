"""How ``wfe run`` and ``wfe worker`` show progress: plain lines (not a terminal) or a
rich Live table (a terminal), fed by lifecycle events and step output lines.

Plain lines (a stable contract for scripts)::

    [wfe] workflow <id> started (<definition> v<version>)
    [wfe] step <name> started
      <name> | <stdout line>
      <name> [stderr] | <stderr line>
    [wfe] step <name> completed in 0.12s
    [wfe] step <name> failed: <message>      (further message lines indented 4 spaces)
    [wfe] workflow <id> COMPLETE in 1.23s

A retried step announces each attempt after the first and each failed attempt that
will be retried (``N`` is the number of attempts its error behaviour allows, ``?`` when
unbounded)::

    [wfe] step <name> failed (attempt 1/N; retrying in 5.00s): <message>
    [wfe] step <name> started (attempt 2/N)

A step cut short by Ctrl-C is shown as ``[wfe] step <name> interrupted``; the internal
``(outputs)`` step of a YAML workflow is shown only when it fails.

``wfe worker`` shows every workflow, so its step lines name the workflow:
``[wfe] <id> step <name> started``. Steps of a sub-workflow are named
``<child definition>/<step>``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TextIO

import attrs
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from wfe.core import (
    ErrorBehavior,
    ErrorBehaviorType,
    LifecycleEvent,
    StepCompleted,
    StepStarted,
    WorkflowCompleted,
    WorkflowError,
    WorkflowResumed,
    WorkflowStarted,
    WorkflowSuspended,
    WorkflowTerminated,
)
from wfe.core.executor import DEFAULT_ERROR_BEHAVIOR

from ._cli_safety import escape_controls
from ._dispatch import parent_of

TERMINAL_EVENTS = (WorkflowCompleted, WorkflowSuspended, WorkflowTerminated)


def seconds(delta: timedelta | float) -> str:
    """``1.23s``; minutes and hours for long durations (``2m05s``, ``1h02m``)."""
    total = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
    if total < 60:
        return f"{total:.2f}s"
    minutes, secs = divmod(int(total), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def first_line(message: str) -> str:
    lines = message.strip().splitlines()
    return lines[0] if lines else ""


HIDDEN_STEPS = ("(outputs)",)
"""Internal steps shown only when they fail (the YAML workflow's outputs check)."""
HIDDEN_PREFIX = "(graph"
"""Steps scheduling a YAML workflow's ``needs``/``matrix`` graph: shown only when they
fail (the end of a round fails naming the failed steps)."""
STATUS_STREAM = "status"
"""Log stream on which a YAML step says how it ended when its pointer cannot:
``failed`` (then the message), ``failed (continued)``, ``skipped``."""


def is_hidden(name: str) -> bool:
    """Whether a step of this name is internal (shown only when it fails)."""
    return name in HIDDEN_STEPS or name.startswith(HIDDEN_PREFIX)


@attrs.define
class StepRow:
    """One execution pointer of a step as shown; ``attempt`` counts its runs after
    failures, ``attempts`` is how many its error behaviour allows (``None``: no limit)."""

    workflow_id: str
    pointer_id: str
    name: str
    status: str = "running"
    started: datetime | None = None
    started_mono: float = attrs.field(factory=time.monotonic)
    duration: timedelta | None = None
    last_line: str = ""
    error: str = ""
    announced: bool = False
    attempt: int = 1
    attempts: int | None = 1
    retry_in: timedelta | None = None
    hidden: bool = False
    final: str = ""
    """What the step said about how it ended (its ``status`` log line), if anything."""

    def of_attempts(self, attempt: int | None = None) -> str:
        """``2/4`` (``2/?`` when retries are unbounded)."""
        total = "?" if self.attempts is None else str(self.attempts)
        return f"{self.attempt if attempt is None else attempt}/{total}"

    def status_text(self) -> str:
        if self.status == "retrying":
            return f"retrying ({self.of_attempts(self.attempt + 1)})"
        if self.status == "running" and self.attempt > 1:
            return f"running ({self.of_attempts()})"
        if self.status in ("completed", "failed") and self.attempt > 1:
            return f"{self.status} (attempt {self.of_attempts()})"
        return self.status


class View:
    """Receives progress; subclasses draw it."""

    def step_started(self, row: StepRow) -> None: ...

    def step_completed(self, row: StepRow) -> None: ...

    def step_failed(self, row: StepRow) -> None: ...

    def step_retrying(self, row: StepRow) -> None: ...

    def step_interrupted(self, row: StepRow) -> None: ...

    def step_skipped(self, row: StepRow) -> None: ...

    def output(self, row: StepRow, stream: str, line: str) -> None: ...

    def workflow(self, workflow_id: str, text: str) -> None: ...

    def message(self, text: str) -> None: ...

    def close(self) -> None: ...


class PlainView(View):
    """One line per event on ``out`` (flushed at once, so a pipe sees it live)."""

    def __init__(self, out: TextIO | None = None, *, name_workflows: bool = False) -> None:
        self._out = out or sys.stdout
        self._name_workflows = name_workflows

    def _line(self, text: str) -> None:
        # Step names, output and error messages come from steps: no control character
        # of theirs reaches the terminal.
        self._out.write(escape_controls(text) + "\n")
        self._out.flush()

    def _step(self, row: StepRow) -> str:
        who = f"{row.workflow_id} " if self._name_workflows else ""
        return f"[wfe] {who}step {row.name}"

    def _message(self, head: str, message: str) -> None:
        lines = message.strip().splitlines() or [""]
        self._line(f"{head}: {lines[0]}")
        for more in lines[1:]:
            self._line(f"    {more}")

    def step_started(self, row: StepRow) -> None:
        attempt = f" (attempt {row.of_attempts()})" if row.attempt > 1 else ""
        self._line(f"{self._step(row)} started{attempt}")

    def step_completed(self, row: StepRow) -> None:
        self._line(f"{self._step(row)} completed in {seconds(row.duration or 0.0)}")

    def step_failed(self, row: StepRow) -> None:
        self._message(f"{self._step(row)} failed", row.error)

    def step_retrying(self, row: StepRow) -> None:
        wait = f"; retrying in {seconds(row.retry_in)}" if row.retry_in is not None else ""
        self._message(f"{self._step(row)} failed (attempt {row.of_attempts()}{wait})", row.error)

    def step_interrupted(self, row: StepRow) -> None:
        self._line(f"{self._step(row)} interrupted (it runs again on resume)")

    def step_skipped(self, row: StepRow) -> None:
        reason = f" ({row.error})" if row.error else ""
        self._line(f"{self._step(row)} skipped{reason}")

    def output(self, row: StepRow, stream: str, line: str) -> None:
        mark = "" if stream == "stdout" else f" [{stream}]"
        who = f"{row.workflow_id} " if self._name_workflows else ""
        self._line(f"  {who}{row.name}{mark} | {line}")

    def workflow(self, workflow_id: str, text: str) -> None:
        self._line(f"[wfe] workflow {workflow_id} {text}")

    def message(self, text: str) -> None:
        self._line(f"[wfe] {text}")


_STATUS_STYLE = {
    "running": "yellow",
    "completed": "green",
    "failed": "red",
    "retrying": "yellow",
    "interrupted": "magenta",
    "skipped": "dim",
}
_STATUS_ICON = {
    "completed": "✓",
    "failed": "✗",
    "retrying": "↻",
    "interrupted": "■",
    "skipped": "-",
}


class LiveView(View):
    """A rich Live table of steps (spinner, status, duration, last output line)."""

    def __init__(self, console: Console | None = None, title: str = "") -> None:
        # Bound to the real stdout now: while steps run, sys.stdout is a StepStream.
        self.console = console or Console(file=sys.stdout)
        self.title = title
        self._rows: list[StepRow] = []
        self._notes: list[str] = []
        self._live = Live(self, console=self.console, refresh_per_second=8, transient=False)
        self._live.start()

    def __rich__(self) -> RenderableType:
        table = Table(expand=False, show_edge=False)
        table.add_column("")
        table.add_column("step", style="bold")
        table.add_column("status")
        table.add_column("time", justify="right")
        table.add_column("output", overflow="ellipsis", no_wrap=True, max_width=80)
        now = time.monotonic()
        for row in self._rows:
            icon: RenderableType
            if row.status == "running":
                icon = Spinner("dots", style="yellow")
                took = seconds(now - row.started_mono)
            else:
                icon = Text(_STATUS_ICON.get(row.status, "?"), style=_STATUS_STYLE[row.status])
                took = seconds(row.duration) if row.duration is not None else ""
            tail = first_line(row.error) if row.error else row.last_line
            table.add_row(
                icon,
                escape_controls(row.name),
                Text(row.status_text(), style=_STATUS_STYLE.get(row.status, "")),
                took,
                Text(escape_controls(tail), style="red" if row.error else "dim"),
            )
        header = [Text(self.title, style="bold")] if self.title else []
        notes = [Text(n, style="dim") for n in self._notes[-3:]]
        return Group(*header, table, *notes)

    def _show(self, row: StepRow) -> None:
        if row not in self._rows:
            self._rows.append(row)

    def step_started(self, row: StepRow) -> None:
        self._show(row)

    def step_failed(self, row: StepRow) -> None:
        self._show(row)

    def step_retrying(self, row: StepRow) -> None:
        self._show(row)

    def step_skipped(self, row: StepRow) -> None:
        self._show(row)

    def output(self, row: StepRow, stream: str, line: str) -> None:
        line = escape_controls(line)
        row.last_line = line if stream == "stdout" else f"[{stream}] {line}"

    def workflow(self, workflow_id: str, text: str) -> None:
        self.title = f"workflow {workflow_id} {text}"

    def message(self, text: str) -> None:
        self._notes.append(text)

    def close(self) -> None:
        self._live.refresh()
        self._live.stop()


def _attempts(behavior: ErrorBehavior) -> tuple[int | None, timedelta | None]:
    """How many attempts ``behavior`` allows (``None``: unbounded) and the retry wait."""
    if behavior.type is not ErrorBehaviorType.RETRY:
        return 1, None
    total = None if behavior.max_retries is None else behavior.max_retries + 1
    return total, behavior.interval


class Progress:
    """Turns lifecycle events and output lines of the watched workflows (and their
    sub-workflows) into :class:`View` calls; ``watch_all`` follows every workflow.
    ``definitions`` (by ``id@version``) tell how often a failing step is retried."""

    def __init__(
        self,
        view: View,
        *,
        watch_all: bool = False,
        definitions: Mapping[str, object] | None = None,
    ) -> None:
        self.view = view
        self.watch_all = watch_all
        self.definitions = definitions or {}
        self.watched: dict[str, str] = {}  # workflow id -> name prefix ("" for the main one)
        self.rows: dict[str, StepRow] = {}
        self.last_error: dict[str, tuple[str, str]] = {}  # workflow id -> (step, message)
        self.finished: dict[str, LifecycleEvent] = {}
        self.on_finish: Callable[[str], None] | None = None
        # Output of a workflow not watched yet: a step may print before the id of the
        # workflow being started is known.
        self._early: dict[str, list[tuple[str, str, str, str, int]]] = {}
        self._held: dict[str, list[tuple[int, str, str]]] = {}

    def watch(self, workflow_id: str, prefix: str = "") -> None:
        self.watched[workflow_id] = prefix
        for line in self._early.pop(workflow_id, []):
            self.output(workflow_id, *line)
        self._early.clear()

    def _prefix(self, workflow_id: str) -> str | None:
        if workflow_id in self.watched:
            return self.watched[workflow_id]
        return "" if self.watch_all else None

    def _behavior(self, ev: LifecycleEvent, step_id: int | None) -> ErrorBehavior:
        """The error behaviour of a step as the executor applies it (outside sagas)."""
        definition: object = self.definitions.get(f"{ev.definition_id}@{ev.version}")
        definition = getattr(definition, "definition", definition)  # a compiled YAML one
        if definition is None:
            return DEFAULT_ERROR_BEHAVIOR
        default = getattr(definition, "default_error_behavior", None) or DEFAULT_ERROR_BEHAVIOR
        for step in getattr(definition, "steps", ()):
            if step.id == step_id:
                if step.compensation_step_id is not None:
                    return ErrorBehavior.compensate()
                return step.error_behavior or default
        return default

    def _row(self, ev: LifecycleEvent, pointer_id: str, name: str | None, step_id: int) -> StepRow:
        wid = ev.workflow_instance_id
        row = self.rows.get(pointer_id)
        if row is None:
            prefix = self._prefix(wid) or ""
            shown = name or f"step {step_id}"
            row = StepRow(wid, pointer_id, f"{prefix}{shown}", hidden=is_hidden(shown))
            row.attempts, row.retry_in = _attempts(self._behavior(ev, step_id))
            self.rows[pointer_id] = row
        return row

    def event(self, ev: LifecycleEvent) -> None:
        wid = ev.workflow_instance_id
        parent = parent_of(ev.reference) if isinstance(ev, WorkflowStarted) else None
        if parent is not None:
            parent_prefix = self._prefix(parent)
            if parent_prefix is not None and wid not in self.watched:
                self.watched[wid] = f"{parent_prefix}{ev.definition_id}/"
        prefix = self._prefix(wid)
        if prefix is None:
            return
        if isinstance(ev, StepStarted):
            self._started(ev)
        elif isinstance(ev, StepCompleted):
            row = self._row(ev, ev.pointer_id, ev.step_name, ev.step_id)
            if row.status == "running":
                row.duration = (
                    ev.time - row.started
                    if row.started
                    else timedelta(seconds=time.monotonic() - row.started_mono)
                )
                self._completed(row)
        elif isinstance(ev, WorkflowError):
            self._error(ev)
        elif isinstance(ev, WorkflowStarted):
            self.view.workflow(wid, f"started ({ev.definition_id} v{ev.version})")
        elif isinstance(ev, WorkflowResumed):
            self.view.workflow(wid, "resumed")
        elif isinstance(ev, TERMINAL_EVENTS):
            self._finished(ev, prefix)

    def _completed(self, row: StepRow) -> None:
        """A step's pointer completed: as the step said it ended, else completed."""
        said, _, message = row.final.partition("\n")
        row.final = ""
        if said == "skipped":
            row.status = "skipped"
            if not row.hidden:
                self.view.step_skipped(row)
        elif said.startswith("failed"):
            row.status = "failed"
            row.error = message if said == "failed" else f"(continue_on_error) {message}"
            self.view.step_failed(row)
        else:
            row.status = "completed"
            if not row.hidden:
                self.view.step_completed(row)

    def skipped(self, workflow_id: str, name: str, reason: str) -> None:
        """A step that never ran (a graph skipped it): shown once, with why."""
        key = f"skipped:{workflow_id}:{name}"
        if key in self.rows:
            return
        prefix = self._prefix(workflow_id) or ""
        row = StepRow(workflow_id, key, f"{prefix}{name}", status="skipped", error=reason)
        row.announced = True
        self.rows[key] = row
        self.view.step_skipped(row)

    def _started(self, ev: StepStarted) -> None:
        row = self._row(ev, ev.pointer_id, ev.step_name, ev.step_id)
        row.attempt = getattr(ev, "attempt", 1)
        row.status, row.error, row.started, row.duration = "running", "", ev.time, None
        row.started_mono = time.monotonic()
        row.announced = True
        if not row.hidden:
            self.view.step_started(row)
        self._flush(row)

    def _error(self, ev: WorkflowError) -> None:
        wid = ev.workflow_instance_id
        row = self.rows.get(ev.pointer_id or "")
        if row is None:
            self.last_error[wid] = ("", ev.message)
            self.view.message(f"workflow {wid} error: {first_line(ev.message)}")
            return
        row.error = ev.message
        row.duration = ev.time - row.started if row.started else None
        self.last_error[wid] = (row.name, ev.message)
        if row.attempts is None or row.attempt < row.attempts:
            row.status = "retrying"
            self.view.step_retrying(row)
        else:
            row.status = "failed"
            self.view.step_failed(row)

    def _finished(self, ev: LifecycleEvent, prefix: str) -> None:
        wid = ev.workflow_instance_id
        for row in self.rows.values():
            # The workflow stopped: a step shown as about to retry did not.
            if row.workflow_id == wid and row.status == "retrying":
                row.status = "failed"
        if prefix != "":
            return
        self.finished[wid] = ev
        if self.watch_all:
            status = {
                WorkflowCompleted: "COMPLETE",
                WorkflowSuspended: "SUSPENDED",
                WorkflowTerminated: "TERMINATED",
            }[type(ev)]
            self.view.workflow(wid, status)
        if self.on_finish is not None:
            self.on_finish(wid)

    def output(
        self, wid: str, pointer_id: str, name: str, stream: str, line: str, attempt: int = 1
    ) -> None:
        """A line a step printed during its ``attempt``-th run."""
        prefix = self._prefix(wid)
        if prefix is None:
            if not self.watched:
                self._early.setdefault(wid, []).append((pointer_id, name, stream, line, attempt))
            return
        row = self.rows.get(pointer_id)
        if row is None:
            row = StepRow(wid, pointer_id, f"{prefix}{name}", hidden=is_hidden(name))
            self.rows[pointer_id] = row
        if stream == STATUS_STREAM:
            row.final = line  # applied when the step's pointer completes
            return
        if row.announced and row.status == "running" and row.attempt == attempt:
            self.view.output(row, stream, line)
        else:
            # Lifecycle events reach the view a little later than output lines (they
            # come through the host's event iterator): hold a step's lines until the
            # StepStarted of their attempt has been shown, so every line appears under
            # its step and attempt.
            self._held.setdefault(pointer_id, []).append((attempt, stream, line))

    def _flush(self, row: StepRow, *, everything: bool = False) -> None:
        held = self._held.pop(row.pointer_id, [])
        later = [h for h in held if h[0] > row.attempt and not everything]
        for attempt, stream, line in held:
            if everything or attempt <= row.attempt:
                self.view.output(row, stream, line)
        if later:
            self._held[row.pointer_id] = later

    def flush_all(self) -> None:
        """Show held lines whose step start was never seen (call before closing)."""
        for pointer_id in list(self._held):
            row = self.rows[pointer_id]
            if not row.announced:
                row.announced = True
                if not row.hidden:
                    self.view.step_started(row)
            self._flush(row, everything=True)

    def interrupt_all(self) -> None:
        """Ctrl-C stopped the run: steps still running are shown as interrupted."""
        for row in self.rows.values():
            if row.status == "running" and row.announced:
                row.status = "interrupted"
                row.duration = timedelta(seconds=time.monotonic() - row.started_mono)
                if not row.hidden:
                    self.view.step_interrupted(row)
