"""``wfe run``, ``wfe resume`` and ``wfe worker``: a host that runs workflows, shown live,
stopped cleanly by Ctrl-C or SIGTERM."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

import attrs
import trio

from wfe.core import (
    DataSerializationError,
    DefinitionError,
    ExecutionResult,
    StepBody,
    StepExecutionContext,
    WfeError,
    WorkflowDefinition,
    WorkflowInstance,
    WorkflowNotFoundError,
    WorkflowStatus,
)
from wfe.core.serialization import opaque_types

from ._cli_output import capture_step_prints, step_output
from ._cli_pipeline import graph_state
from ._cli_safety import escape_controls
from ._cli_secrets import check_secrets, declared_secrets
from ._cli_setup import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    Loaded,
    Store,
    builder_for,
    key_of,
    open_control,
    remember,
    store_error,
)
from ._cli_view import LiveView, PlainView, Progress, View, seconds
from ._dispatch import parent_of
from ._host import WorkflowHost

RUN_GRACE = timedelta(seconds=1)
"""How long ``wfe run`` lets a step finish after Ctrl-C (it re-runs on resume)."""


def _quiet_step_log() -> None:
    """The progress view shows every step error: the host's log of them would repeat
    each one on stderr (through logging's last-resort handler)."""
    steps = logging.getLogger("wfe.host.steps")
    steps.propagate = False
    if not steps.handlers:
        steps.addHandler(logging.NullHandler())


def make_view(plain: bool, title: str = "") -> View:
    """A Live table on a terminal, plain lines otherwise (or when ``plain``)."""
    if not plain and sys.stdout.isatty():
        return LiveView(title=title)
    return PlainView()


def _tag_output(progress: Progress) -> Callable[..., Awaitable[ExecutionResult | None]]:
    """Step middleware giving each step body a log sink that knows its workflow, step and
    attempt, so output lines (including what a code step prints) are shown under the
    step that printed them."""

    async def middleware(
        ctx: StepExecutionContext,
        body: StepBody,
        proceed: Callable[[], Awaitable[ExecutionResult | None]],
    ) -> ExecutionResult | None:
        wid, pid, name = ctx.workflow.id, ctx.pointer.id, ctx.step.display_name
        attempt = ctx.pointer.retry_count + 1

        def sink(stream: str, line: str) -> None:
            progress.output(wid, pid, name, stream, line, attempt)

        ctx.log_sink = sink
        with step_output(sink):
            return await proceed()

    return middleware


def _only_own(own: set[str]) -> Callable[..., Awaitable[None]]:
    """Workflow middleware of ``wfe run``/``wfe resume``: run passes of the workflows in
    ``own`` and of their sub-workflows only. Other runnable instances of the store stay
    as they are (due), for ``wfe resume`` or ``wfe worker`` to run."""

    async def middleware(
        instance: WorkflowInstance, proceed: Callable[[], Awaitable[None]]
    ) -> None:
        parent = parent_of(instance.reference)
        if instance.id in own or (parent is not None and parent in own):
            own.add(instance.id)
            await proceed()

    return middleware


@attrs.define
class _Interrupt:
    """Set by the first SIGINT/SIGTERM; a second one exits at once."""

    scope: trio.CancelScope
    hit: bool = False
    on_first: Callable[[], None] | None = None

    async def serve(self) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                if self.hit:
                    os._exit(EXIT_INTERRUPTED)
                self.hit = True
                if self.on_first is not None:
                    self.on_first()
                self.scope.cancel()


@contextlib.asynccontextmanager
async def _running(host: WorkflowHost, store: Store) -> AsyncIterator[WorkflowHost]:
    """Enter ``host``, turning a store that cannot be opened into exit code 3."""
    try:
        await host.__aenter__()
    except WfeError as exc:
        err = store_error(exc, store)
        if err is None:
            raise
        raise err from exc
    try:
        yield host
    except BaseException as exc:
        await host.__aexit__(type(exc), exc, exc.__traceback__)
        raise
    else:
        await host.__aexit__(None, None, None)


async def _consume(host: WorkflowHost, progress: Progress) -> None:
    async for ev in host.lifecycle_events():
        progress.event(ev)


def definition_of(obj: Any) -> WorkflowDefinition:
    return obj if isinstance(obj, WorkflowDefinition) else obj.definition


def _start_data(obj: Any, inputs: dict[str, Any]) -> Any:
    # YAML workflows hold a dict (their inputs are checked and defaulted on start);
    # code-defined ones get their data type's default when no input is given.
    if not isinstance(obj, WorkflowDefinition) or inputs:
        return dict(inputs)
    return None


async def run_new(
    store: Store,
    loaded: Loaded,
    target: Any,
    inputs: dict[str, Any],
    *,
    plain: bool,
    detach: bool,
    reference: str | None,
    secrets: Mapping[str, str] | None = None,
) -> int:
    """``wfe run``: start ``target`` and show it until it stops being RUNNABLE."""
    definition = definition_of(target)
    data = _start_data(target, inputs)
    if detach:
        async with open_control(store) as host:
            loaded.register_on_host(host)
            await _warn_changed(host, definition)
            remember(store, loaded.sources)
            wid = await _start(host, definition, data, reference)
        print(f"[wfe] workflow {wid} started ({definition.id} v{definition.version})")
        print(f"[wfe] a worker runs it: wfe worker{store.hint()}")
        return EXIT_OK

    async def begin(host: WorkflowHost) -> str:
        await _warn_changed(host, definition)
        remember(store, loaded.sources)  # once the store opened: resumable from here on
        return await _start(host, definition, data, reference, secrets)

    return await _watch(store, loaded, begin, plain=plain, title=definition.id)


async def _warn_changed(host: WorkflowHost, definition: WorkflowDefinition) -> None:
    """Warn when the store ran this id and version with other steps: its unfinished
    instances cannot resume with the changed file, and both graphs now share a name."""
    with opaque_types():
        found = await host.list_workflows(definition_id=definition.id, take=50)
    for instance in found:
        if (
            instance.version == definition.version
            and instance.fingerprint
            and instance.fingerprint != definition.fingerprint
        ):
            print(
                f"wfe: warning: {definition.id!r} version {definition.version} ran in this "
                f"store with other steps (workflow {instance.id}); unfinished runs of the "
                "old steps cannot resume with this file: give the changed workflow a new "
                "version",
                file=sys.stderr,
            )
            return


async def _start(
    host: WorkflowHost,
    definition: WorkflowDefinition,
    data: Any,
    reference: str | None,
    secrets: Mapping[str, str] | None = None,
) -> str:
    try:
        return await host.start_workflow(
            definition.id, definition.version, data, reference, secrets=secrets
        )
    except (DefinitionError, DataSerializationError) as exc:
        raise CliError(f"cannot start {definition.id!r}: {exc}") from exc
    except WfeError as exc:
        if type(exc).__name__ == "YamlWorkflowError":
            raise CliError(f"cannot start {definition.id!r} with these inputs:\n{exc}") from exc
        raise


async def resume(
    store: Store,
    loaded: Loaded,
    workflow_id: str,
    *,
    plain: bool,
    detach: bool,
    secrets: Mapping[str, str] | None = None,
) -> int:
    """``wfe resume``: make a suspended workflow runnable and run it here to the end
    (with ``detach``, leave the running to a worker)."""
    async with open_control(store) as control:
        loaded.register_on_host(control)
        try:
            instance = await control.persistence.get_workflow(workflow_id)
        except WorkflowNotFoundError as exc:
            raise CliError(f"no workflow {workflow_id!r} in store {store.shown}") from exc
        if instance.status is WorkflowStatus.COMPLETE:
            print(f"[wfe] workflow {workflow_id} is already COMPLETE")
            return EXIT_OK
        if instance.status is WorkflowStatus.TERMINATED:
            print(
                f"wfe: workflow {workflow_id} was TERMINATED and cannot be resumed; "
                "start it again with wfe run",
                file=sys.stderr,
            )
            return EXIT_FAILED
        if detach:
            await control.resume_workflow(workflow_id)
            print(
                f"[wfe] workflow {workflow_id} resumed; a worker runs it: wfe worker{store.hint()}"
            )
            return EXIT_OK
        _check_known(instance, loaded)
        target = loaded.definitions[f"{instance.definition_id}@{instance.version}"]
        declared = declared_secrets(target)
        if declared or secrets:
            check_secrets(instance.definition_id, declared, secrets or {})

    async def begin(host: WorkflowHost) -> str:
        await host.resume_workflow(workflow_id, secrets=secrets)
        return workflow_id

    return await _watch(store, loaded, begin, plain=plain, title=instance.definition_id)


def _check_known(instance: WorkflowInstance, loaded: Loaded) -> None:
    key = f"{instance.definition_id}@{instance.version}"
    obj = loaded.definitions.get(key)
    if obj is None:
        raise CliError(
            f"workflow {instance.id} runs {instance.definition_id!r} version "
            f"{instance.version}, which is not known here; pass its file: "
            f"wfe resume {instance.id} FILE.yaml"
        )
    definition = definition_of(obj)
    if instance.fingerprint and instance.fingerprint != definition.fingerprint:
        raise CliError(
            f"workflow {instance.id} was started with other steps than "
            f"{instance.definition_id!r} version {instance.version} has now "
            f"(from {loaded.sources[key_of(definition)].path}); restore the file as it "
            "was, or run the changed workflow under a new version"
        )


async def _others(host: WorkflowHost, own: set[str]) -> list[str]:
    """Ids of the store's other RUNNABLE workflows (not ``own``, not their children)."""
    found = await host.list_workflows(status=WorkflowStatus.RUNNABLE, take=1000)
    return [i.id for i in found if i.id not in own and parent_of(i.reference) not in own]


def _same_destination() -> bool:
    """Whether stdout and stderr are one file (a CI log, ``2>&1``): a failure is then
    told once, not once on each."""
    try:
        out, err = os.fstat(sys.stdout.fileno()), os.fstat(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return (out.st_dev, out.st_ino) == (err.st_dev, err.st_ino)


async def _watch(
    store: Store,
    loaded: Loaded,
    begin: Callable[[WorkflowHost], Awaitable[str]],
    *,
    plain: bool,
    title: str,
) -> int:
    _quiet_step_log()
    view = make_view(plain, title)
    progress = Progress(view, definitions=loaded.definitions)
    finished = trio.Event()
    progress.on_finish = lambda _wid: finished.set()
    own: set[str] = set()
    builder = (
        builder_for(store)
        .grace_period(RUN_GRACE)
        .use_step_middleware(_tag_output(progress))
        .use_workflow_middleware("execute", _only_own(own))
    )
    loaded.register_on(builder)
    started = time.monotonic()
    wid = ""
    instance: WorkflowInstance | None = None
    interrupt: _Interrupt | None = None
    try:
        # Other workflows of the store are not run here, but the host still reads them
        # (their data class may not be importable in this process).
        with opaque_types(), capture_step_prints():
            async with _running(builder.build(), store) as host, trio.open_nursery() as nursery:
                interrupt = _Interrupt(nursery.cancel_scope)
                nursery.start_soon(interrupt.serve)
                wid = await begin(host)
                own.add(wid)
                progress.watch(wid)
                # Started after the id is known: the replayed history holds every event.
                nursery.start_soon(_consume, host, progress)
                others = await _others(host, own)
                if others:
                    view.message(
                        f"{len(others)} other unfinished workflow(s) in this store are not "
                        f"run here (e.g. {others[0]}); run them with: wfe resume ID"
                        f"{store.hint()}, or all with: wfe worker{store.hint()}"
                    )
                instance = await host.wait_for_workflow(wid)
                show_skipped(progress, instance)
                with trio.move_on_after(1.0):
                    await finished.wait()  # let the view show the last events
                nursery.cancel_scope.cancel()
    finally:
        progress.flush_all()
        if instance is None or (interrupt is not None and interrupt.hit):
            progress.interrupt_all()
        view.close()
    return _report(store, progress, wid, instance, interrupt, seconds(time.monotonic() - started))


def show_skipped(progress: Progress, instance: WorkflowInstance) -> None:
    """Show the steps a graph skipped without running them (a need failed or was
    skipped, or their `when` was false)."""
    state = graph_state(instance.data)
    if state is None:
        return
    ran = {row.name for row in progress.rows.values() if row.workflow_id == instance.id}
    found = state.get("reasons")
    reasons: dict[str, Any] = found if isinstance(found, dict) else {}
    for name, status in state["status"].items():
        if status == "skipped" and name not in ran:
            progress.skipped(instance.id, str(name), str(reasons.get(name, "")))


def _report(
    store: Store,
    progress: Progress,
    wid: str,
    instance: WorkflowInstance | None,
    interrupt: _Interrupt | None,
    elapsed: str,
) -> int:
    """The closing lines of ``wfe run``/``wfe resume`` and the exit code."""
    hint = f"wfe resume {wid}{store.hint()}  (or let a worker run it: wfe worker{store.hint()})"
    if instance is None or (interrupt is not None and interrupt.hit):
        if not wid:
            print("[wfe] interrupted before the workflow started", file=sys.stderr)
            return EXIT_INTERRUPTED
        print(f"[wfe] interrupted; the workflow is stored and resumable: {hint}")
        print(f"[wfe] workflow {wid} INTERRUPTED after {elapsed}")
        if not _same_destination():
            print(f"wfe: interrupted; resume with: {hint}", file=sys.stderr)
        return EXIT_INTERRUPTED
    status = instance.status
    if status is WorkflowStatus.COMPLETE:
        print(f"[wfe] workflow {wid} COMPLETE in {elapsed}")
        return EXIT_OK
    step, message = progress.last_error.get(wid, ("", ""))
    message = "\n".join(escape_controls(line) for line in message.split("\n"))
    where = f"step {step}: " if step else ""
    shown = bool(step) and isinstance(progress.view, PlainView)
    if message and not shown:
        # The progress lines did not show the whole message (a live table shows its
        # first line; an error outside any step is not a step line).
        lines = message.strip().splitlines() or [""]
        print(f"[wfe] last error: {where}{lines[0]}")
        for more in lines[1:]:
            print(f"    {more}")
    if status is WorkflowStatus.SUSPENDED:
        print(f"[wfe] fix the cause, then resume with: {hint}")
    else:
        print("[wfe] a terminated workflow cannot be resumed; start it again with wfe run")
    print(f"[wfe] workflow {wid} {status.value} in {elapsed}")
    if _same_destination():
        return EXIT_FAILED  # everything above is already in the one log
    detail = f": {where}{message}" if message else ""
    print(f"wfe: workflow {wid} {status.value}{detail}", file=sys.stderr)
    if status is WorkflowStatus.SUSPENDED:
        print(f"wfe: resume with: {hint}", file=sys.stderr)
    return EXIT_FAILED


async def worker(store: Store, loaded: Loaded) -> int:
    """``wfe worker``: run every workflow the store holds (whose definition is known)
    until SIGINT/SIGTERM, then drain in-flight steps and exit 0."""
    if not loaded.definitions:
        raise CliError(
            "no workflow definitions to serve: pass FILE.yaml or --import MODULE, or run "
            "a workflow with 'wfe run' first (its definition is remembered)",
            EXIT_USAGE,
        )
    _quiet_step_log()
    view = PlainView(name_workflows=True)
    progress = Progress(view, watch_all=True, definitions=loaded.definitions)
    builder = builder_for(store).use_step_middleware(_tag_output(progress))
    loaded.register_on(builder)
    names = ", ".join(sorted(k.replace("@", " v") for k in loaded.definitions))
    host = builder.build()
    with capture_step_prints():
        async with _running(host, store), trio.open_nursery() as nursery:
            interrupt = _Interrupt(nursery.cancel_scope)
            grace = seconds(host.config.grace_period)
            interrupt.on_first = lambda: view.message(
                f"stopping: draining in-flight steps (up to {grace}; Ctrl-C again to quit now)"
            )
            nursery.start_soon(interrupt.serve)
            nursery.start_soon(_consume, host, progress)
            remember(store, loaded.sources)
            view.message(f"worker serving {store.shown}: {names}; Ctrl-C to stop")
    progress.flush_all()
    view.message("worker stopped")
    return EXIT_OK
