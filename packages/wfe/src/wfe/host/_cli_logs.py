"""``wfe logs ID [STEP] [--follow]``: the output lines every step of a workflow wrote,
read from the store (so from any machine reaching it), as ``wfe run`` shows them::

    <step> | <stdout line>
    <step> [stderr] | <stderr line>
    <step> (attempt 2) [log] | <ctx.log / Wfe.log line>
    [wfe] step <step> failed: <message>

``STEP`` selects one step (and every instance of a matrix step of that name);
``--follow`` keeps printing new lines until the workflow stops being RUNNABLE.
"""

from __future__ import annotations

import sys

import trio

from wfe.core import WorkflowNotFoundError, WorkflowStatus
from wfe.core.protocols import StepLogLine, StepLogStore

from ._cli_commands import _inspect
from ._cli_safety import escape_controls
from ._cli_setup import EXIT_OK, CliError, Store
from ._cli_view import STATUS_STREAM

PAGE = 1000
FOLLOW_POLL = 0.3
"""Seconds between reads while following (the writer batches lines anyway)."""


def matches(line: StepLogLine, step: str | None) -> bool:
    """Whether ``line`` belongs to ``step`` (a matrix step's instances included)."""
    return step is None or line.step_name == step or line.step_name.startswith(f"{step} (")


def render(line: StepLogLine) -> str:
    """One stored line as ``wfe run`` would have shown it (control characters escaped)."""
    name = escape_controls(line.step_name)
    if line.stream == STATUS_STREAM:
        said, _, message = line.line.partition("\n")
        first = message.splitlines()[0] if message.strip() else ""
        return escape_controls(
            f"[wfe] step {line.step_name} {said}" + (f": {first}" if first else "")
        )
    attempt = f" (attempt {line.attempt})" if line.attempt > 1 else ""
    mark = "" if line.stream == "stdout" else f" [{escape_controls(line.stream)}]"
    return f"{name}{attempt}{mark} | {escape_controls(line.line)}"


async def logs(store: Store, workflow_id: str, step: str | None, follow: bool) -> int:
    """Print the stored step output of ``workflow_id``."""
    async with _inspect(store) as host:
        persistence = host.persistence
        if not isinstance(persistence, StepLogStore):
            raise CliError(
                f"the store {store.shown} keeps no step logs (its provider has no step-log "
                "capability): step output is only shown live by wfe run / wfe worker, and "
                "the last 64 KiB of each shell step is in wfe show ID --json"
            )
        try:
            instance = await persistence.get_workflow(workflow_id)
        except WorkflowNotFoundError as exc:
            raise CliError(f"no workflow {workflow_id!r} in store {store.shown}") from exc
        after, shown = 0, 0
        finished = instance.status is not WorkflowStatus.RUNNABLE
        while True:
            page = await persistence.read_step_logs(workflow_id, after=after, limit=PAGE)
            for line in page:
                if matches(line, step):
                    print(render(line), flush=follow)
                    shown += 1
            if page:
                after = page[-1].seq
            if len(page) == PAGE:
                continue
            if not follow or finished:
                break
            await trio.sleep(FOLLOW_POLL)
            instance = await persistence.get_workflow(workflow_id)
            # One more read after it stopped: its last lines may have been written since.
            finished = instance.status is not WorkflowStatus.RUNNABLE
    if not shown:
        what = f"step {step!r} of workflow" if step else "workflow"
        print(f"wfe: no log lines stored for {what} {workflow_id}", file=sys.stderr)
    return EXIT_OK
