"""Running a Deno step: sandboxed JavaScript/TypeScript with a private result channel.

One ``deno run`` process per step, started in its own session so that a timeout or
a cancelled caller SIGKILLs its whole process group. The user's code is imported as
its own module (line numbers in errors are the script's own) after a prelude that
installs ``Wfe``. Workflow data goes in on stdin; outputs, ``Wfe.log`` lines and
exceptions come back as JSON lines on a FIFO the prelude opens and wfe unlinks
before any user code runs (see ``_deno_prelude.js``), so stdout cannot forge them.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import trio

from ._deno_channel import Channel, LineSplitter, LogFn
from ._deno_config import DenoConfig as DenoConfig
from ._deno_config import DenoPermissions as DenoPermissions
from ._deno_config import is_remote
from ._deno_errors import DenoStepError as DenoStepError
from ._deno_errors import crash_error, error_from_record, missing_error
from ._deno_links import escaping_links, resolved_grants

_PRELUDE = Path(__file__).with_name("_deno_prelude.js")
_BASE_FLAGS = ("run", "--no-prompt", "--no-config", "--no-lock", "--no-npm")
# Host variables a process commonly needs; everything else must be granted by name.
_PASSTHROUGH_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")
# How long stdout/stderr may stay open after Deno exits (a detached grandchild).
_PIPE_GRACE = 1.0
_STDERR_TAIL = 20
_INLINE_DISPLAY = "script"

__all__ = ["DenoConfig", "DenoPermissions", "DenoStepError", "default_deno_dir", "run_deno"]


@functools.cache
def _deno_binary() -> str:
    try:
        import deno
    except ImportError as exc:
        raise missing_error("the `deno` package cannot be imported") from exc
    try:
        path = str(deno.find_deno_bin())
    except Exception as exc:  # the package's own lookup error type is not public
        raise missing_error(f"the `deno` package has no binary: {exc}") from exc
    if not os.access(path, os.X_OK):
        raise missing_error(f"{path} is not executable")
    return path


def default_deno_dir() -> Path:
    """The engine's own Deno cache: ``$XDG_CACHE_HOME/wfe/deno`` (or the temp dir).

    Kept apart from the user's global Deno cache so steps neither see nor pollute it.
    """
    cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    candidate = Path(cache_home) / "wfe" / "deno"
    try:
        candidate.mkdir(parents=True, exist_ok=True, mode=0o700)
        return candidate
    except OSError:
        fallback = Path(tempfile.gettempdir()) / f"wfe-deno-{os.getuid()}"
        fallback.mkdir(parents=True, exist_ok=True, mode=0o700)
        return fallback


def _jsonable(value: Any) -> Any:
    # Workflow data may hold values JSON lacks; give JavaScript their natural form.
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if attrs.has(type(value)):
        return attrs.asdict(value, recurse=False)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _encode_data(data: Mapping[str, Any]) -> bytes:
    try:
        text = json.dumps(dict(data), default=_jsonable, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise DenoStepError(
            f"workflow data cannot be passed to the Deno step: {exc}", kind="exception"
        ) from exc
    return text.encode()


def _resolve(path: str, base: Path) -> Path:
    resolved = Path(path).expanduser()
    return resolved if resolved.is_absolute() else base / resolved


@attrs.frozen
class _Launch:
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    script_url: str
    display: str


def _prepare(
    config: DenoConfig, workdir: Path, deno_dir: Path, channel: Path, deny: list[str]
) -> _Launch:
    """Write the entry module (and an inline script) and build argv and env."""
    cwd = Path(config.working_dir) if config.working_dir else Path.cwd()
    if not cwd.is_dir():
        raise DenoStepError(
            f"the Deno step's working_dir {config.working_dir!r} is not a directory",
            kind="exception",
        )
    if config.file is not None:
        script_path = _resolve(config.file, cwd)
        if not script_path.is_file():
            raise DenoStepError(
                f"the Deno step's file {config.file!r} does not exist (looked at {script_path})",
                kind="exception",
            )
        display = config.file
    else:
        script_path = workdir / f"script{config.script_suffix}"
        script_path.write_text(config.script or "", encoding="utf-8")
        display = _INLINE_DISPLAY
    script_url = script_path.resolve().as_uri()

    specifiers: list[str] = []
    for module in config.modules:
        if is_remote(module):
            if not config.permissions.allows_url(module):
                raise DenoStepError(
                    f"module {module!r}: its host is not listed in permissions.net",
                    kind="permission",
                )
            specifiers.append(module)
        elif module.startswith("file:"):
            specifiers.append(module)
        else:
            specifiers.append(_resolve(module, cwd).resolve().as_uri())
    specifiers.append(script_url)
    # Literal specifiers (not data) so Deno loads them as part of the module graph.
    loaders = ",\n".join(f"  () => import({json.dumps(s)})" for s in specifiers)
    entry = workdir / "main.js"
    entry.write_text(
        f"import {{ run }} from {json.dumps(_PRELUDE.resolve().as_uri())};\n"
        f"await run([\n{loaders},\n]);\n",
        encoding="utf-8",
    )

    env = {name: os.environ[name] for name in _PASSTHROUGH_ENV if name in os.environ}
    env.update({n: os.environ[n] for n in config.permissions.env if n in os.environ})
    env.update(config.env)
    env.update(DENO_DIR=str(deno_dir), DENO_NO_UPDATE_CHECK="1", NO_COLOR="1")
    flags = [*config.permission_flags(str(channel)), *deny]
    argv = [_deno_binary(), *_BASE_FLAGS, *flags, str(entry)]
    return _Launch(argv=argv, env=env, cwd=cwd, script_url=script_url, display=display)


def _contain_links(config: DenoConfig) -> tuple[DenoConfig, list[str]]:
    """The config with grants that are links also granting what they name, and the
    ``--deny-*`` flags for links that lead out of the grants (see :mod:`._deno_links`)."""
    perms = config.permissions
    cwd = Path(config.working_dir) if config.working_dir else Path.cwd()
    deny: list[str] = []
    for kind, paths in (("read", perms.read), ("write", perms.write)):
        links = escaping_links(kind, paths, cwd)
        if links:
            deny.append(f"--deny-{kind}=" + ",".join(links))
    resolved = attrs.evolve(
        perms, read=resolved_grants(perms.read, cwd), write=resolved_grants(perms.write, cwd)
    )
    return attrs.evolve(config, permissions=resolved), deny


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


async def _pump(
    stream: trio.abc.ReceiveStream | None, kind: str, log: LogFn, tail: deque[str] | None
) -> None:
    if stream is None:
        return
    splitter = LineSplitter()

    def emit(lines: list[str]) -> None:
        for line in lines:
            log(kind, line)
            if tail is not None:
                tail.append(line)

    try:
        while chunk := await stream.receive_some(65536):
            emit(splitter.feed(chunk))
    except trio.ClosedResourceError:
        pass
    finally:
        emit(splitter.flush())


async def _feed(process: trio.Process, channel: Channel, data: bytes) -> None:
    stdin = process.stdin
    assert stdin is not None
    try:
        await stdin.send_all(json.dumps({"channel": str(channel.path)}).encode() + b"\n")
        await channel.ready.wait()
        channel.unlink()  # before the data, hence before any user code runs
        await stdin.send_all(data)
        await stdin.aclose()
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass  # Deno died early; its exit status says why


async def run_deno(
    config: DenoConfig,
    data: Mapping[str, Any],
    log: Callable[[str, str], None],
    *,
    deno_dir: Path | None = None,
) -> dict[str, Any]:
    """Run one Deno step and return the outputs it set with ``Wfe.setOutput``.

    ``data`` is what ``Wfe.getData()`` returns. ``log(kind, line)`` receives, live,
    ``Wfe.log`` lines as ``"log"`` and the script's own output as ``"stdout"`` /
    ``"stderr"``. ``deno_dir`` is the Deno cache (default :func:`default_deno_dir`).
    Raises :class:`DenoStepError` whose ``kind`` says why the step failed.
    """
    data_bytes = _encode_data(data)
    config, deny = await trio.to_thread.run_sync(_contain_links, config)
    cache = deno_dir if deno_dir is not None else default_deno_dir()
    workdir = Path(tempfile.mkdtemp(prefix="wfe-deno-"))
    try:
        channel_path = workdir / f"channel-{secrets.token_hex(16)}"
        launch = _prepare(config, workdir, cache, channel_path, deny)
        channel = Channel(channel_path, log, config.limits)
        try:
            return await _supervise(config, launch, channel, data_bytes, log)
        finally:
            channel.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def _supervise(
    config: DenoConfig, launch: _Launch, channel: Channel, data: bytes, log: LogFn
) -> dict[str, Any]:
    try:
        process = await trio.lowlevel.open_process(
            launch.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=launch.cwd,
            env=launch.env,
            start_new_session=True,  # its own process group, killed as one
        )
    except (FileNotFoundError, PermissionError) as exc:
        raise missing_error(f"cannot start {launch.argv[0]}: {exc.strerror}") from exc
    stderr_tail: deque[str] = deque(maxlen=_STDERR_TAIL)
    try:
        with trio.CancelScope() as deadline:
            if config.timeout is not None:
                deadline.deadline = trio.current_time() + config.timeout.total_seconds()
            async with trio.open_nursery() as pumps:
                pumps.start_soon(_pump, process.stdout, "stdout", log, None)
                pumps.start_soon(_pump, process.stderr, "stderr", log, stderr_tail)
                async with trio.open_nursery() as talk:
                    talk.start_soon(channel.serve)
                    talk.start_soon(_feed, process, channel, data)
                    await process.wait()
                    talk.cancel_scope.cancel()
                if config.permissions.run:
                    _kill_group(process.pid)  # subprocesses the script left behind
                pumps.cancel_scope.deadline = trio.current_time() + _PIPE_GRACE
        if deadline.cancelled_caught and config.timeout is not None:
            raise DenoStepError(
                f"Deno step timed out after {config.timeout.total_seconds():g}s and was killed",
                kind="timeout",
            )
        await channel.drain()
    finally:
        if process.returncode is None:
            _kill_group(process.pid)
        with trio.CancelScope(shield=True):
            await process.wait()
            for pipe in (process.stdin, process.stdout, process.stderr):
                if pipe is not None:
                    await pipe.aclose()

    if channel.broken is not None:
        raise DenoStepError(f"Deno step broke wfe's result channel: {channel.broken}", kind="crash")
    if channel.error is not None:
        raise error_from_record(channel.error, script_url=launch.script_url, display=launch.display)
    returncode = process.returncode if process.returncode is not None else -signal.SIGKILL
    if returncode != 0:
        raise crash_error(returncode, stderr_tail)
    if not channel.ready.is_set():
        raise DenoStepError("Deno exited before wfe's prelude started", kind="crash")
    return dict(channel.outputs)
