"""Deno steps run real Deno: outputs, logs, sandbox, timeouts and errors."""

from __future__ import annotations

import functools
import http.server
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import trio

from wfe.core.installation import install_command
from wfe.yaml._deno import DenoConfig, DenoPermissions, DenoStepError, run_deno


class LogRecorder:
    """Collects ``log(kind, line)`` calls with the trio time each arrived."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, str, float]] = []

    def __call__(self, kind: str, line: str) -> None:
        self.entries.append((kind, line, trio.current_time()))

    def lines(self, kind: str) -> list[str]:
        return [line for k, line, _ in self.entries if k == kind]


@pytest.fixture(scope="session")
def deno_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("deno-cache")


@pytest.fixture
def log() -> LogRecorder:
    return LogRecorder()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A static HTTP server on 127.0.0.1 serving a temp directory: (directory, port)."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "hello.txt").write_text("hello from the server")
    (root / "mod.js").write_text("globalThis.fromRemote = 'remote module loaded';\n")
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _is_dead(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return status.rsplit(")", 1)[1].split()[0] in ("Z", "X")  # zombie: awaiting its reaper


async def assert_gone(pid: int) -> None:
    """Wait (up to 3 s) until ``pid`` is dead; a foreign process offers no event to await."""
    for _ in range(60):
        if _is_dead(pid):
            return
        await trio.sleep(0.05)
    raise AssertionError(f"process {pid} is still alive")


async def run(
    script: str,
    deno_dir: Path,
    log: LogRecorder | None = None,
    data: dict[str, Any] | None = None,
    **options: Any,
) -> dict[str, Any]:
    config = DenoConfig(script=script, **options)
    return await run_deno(config, data or {}, log or LogRecorder(), deno_dir=deno_dir)


async def test_outputs_of_every_json_type_round_trip(deno_dir: Path) -> None:
    outputs = await run(
        """
        Wfe.setOutput("string", "héllo \\"quoted\\"\\nnext line");
        Wfe.setOutput("integer", 42);
        Wfe.setOutput("float", 2.5);
        Wfe.setOutput("negative", -7);
        Wfe.setOutput("true", true);
        Wfe.setOutput("false", false);
        Wfe.setOutput("null", null);
        Wfe.setOutput("undefined", undefined);
        Wfe.setOutput("array", [1, "two", null, false, [3]]);
        Wfe.setOutput("object", {a: 1, b: {c: [true, {d: "deep"}]}});
        Wfe.setOutput("empty", {});
        Wfe.setOutput("replaced", 1);
        Wfe.setOutput("replaced", 2);
        """,
        deno_dir,
    )
    assert outputs == {
        "string": 'héllo "quoted"\nnext line',
        "integer": 42,
        "float": 2.5,
        "negative": -7,
        "true": True,
        "false": False,
        "null": None,
        "undefined": None,
        "array": [1, "two", None, False, [3]],
        "object": {"a": 1, "b": {"c": [True, {"d": "deep"}]}},
        "empty": {},
        "replaced": 2,
    }
    assert type(outputs["integer"]) is int


async def test_get_data_returns_the_workflow_data_as_json(deno_dir: Path) -> None:
    data = {"name": "wfe", "count": 3, "price": Decimal("9.5"), "tags": ("a", "b"), "nested": {}}
    outputs = await run(
        """
        const d = Wfe.getData();
        d.count = 100; // a fresh copy each call: mutation does not leak
        Wfe.setOutput("echo", Wfe.getData());
        """,
        deno_dir,
        data=data,
    )
    assert outputs["echo"] == {
        "name": "wfe",
        "count": 3,
        "price": 9.5,
        "tags": ["a", "b"],
        "nested": {},
    }


async def test_typescript_with_types_runs(deno_dir: Path) -> None:
    outputs = await run(
        """
        interface Order { id: string; total: number }
        function double<T extends number>(value: T): number { return value * 2; }
        const order = Wfe.getData() as unknown as Order;
        const total: number = double(order.total);
        enum Level { Low = "low", High = "high" }
        Wfe.setOutput("result", { id: order.id, total, level: Level.High });
        """,
        deno_dir,
        data={"id": "o-1", "total": 21},
    )
    assert outputs == {"result": {"id": "o-1", "total": 42, "level": "high"}}


async def test_inline_javascript_when_typescript_is_false(deno_dir: Path) -> None:
    outputs = await run("Wfe.setOutput('ok', typeof Deno);", deno_dir, typescript=False)
    assert outputs == {"ok": "object"}


async def test_top_level_await(deno_dir: Path) -> None:
    outputs = await run(
        """
        const value = await new Promise((resolve) => setTimeout(() => resolve("later"), 20));
        Wfe.setOutput("value", value);
        """,
        deno_dir,
    )
    assert outputs == {"value": "later"}


async def test_wfe_log_and_stdout_stderr_are_streamed_live(
    deno_dir: Path, log: LogRecorder
) -> None:
    await run(
        """
        Wfe.log("first", 1, {a: [2]});
        console.log("to stdout");
        console.error("to stderr");
        Wfe.log("two\\nlines");
        await new Promise((resolve) => setTimeout(resolve, 600));
        Wfe.log("last");
        """,
        deno_dir,
        log,
    )
    finished = trio.current_time()
    assert log.lines("log") == ["first 1 { a: [ 2 ] }", "two", "lines", "last"]
    assert log.lines("stdout") == ["to stdout"]
    assert log.lines("stderr") == ["to stderr"]
    first_time = next(t for kind, line, t in log.entries if line.startswith("first"))
    # Delivered while the script was still sleeping, not collected at exit.
    assert finished - first_time >= 0.4


async def test_file_read_is_denied_unless_listed(deno_dir: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cret")
    script = f"Wfe.setOutput('text', Deno.readTextFileSync({str(secret)!r}));"
    with pytest.raises(DenoStepError) as caught:
        await run(script, deno_dir)
    assert caught.value.kind == "permission"
    assert "read access" in str(caught.value)
    assert str(secret) in str(caught.value)
    assert "permissions.read" in str(caught.value)

    allowed = DenoPermissions(read=(str(secret),))
    outputs = await run(script, deno_dir, permissions=allowed)
    assert outputs == {"text": "s3cret"}


async def test_file_write_is_denied_unless_listed(deno_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    script = f"Deno.writeTextFileSync({str(target)!r}, 'written');"
    with pytest.raises(DenoStepError) as caught:
        await run(script, deno_dir)
    assert caught.value.kind == "permission"
    assert not target.exists()
    await run(script, deno_dir, permissions=DenoPermissions(write=(str(target),)))
    assert target.read_text() == "written"


async def test_env_read_is_denied_unless_listed(
    deno_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WFE_DENO_TEST_VAR", "from the host")
    script = "Wfe.setOutput('value', Deno.env.get('WFE_DENO_TEST_VAR') ?? null);"
    with pytest.raises(DenoStepError) as caught:
        await run(script, deno_dir)
    assert caught.value.kind == "permission"
    assert "WFE_DENO_TEST_VAR" in str(caught.value)

    allowed = DenoPermissions(env=("WFE_DENO_TEST_VAR",))
    assert await run(script, deno_dir, permissions=allowed) == {"value": "from the host"}


async def test_step_env_is_set_and_readable(deno_dir: Path) -> None:
    outputs = await run(
        "Wfe.setOutput('value', Deno.env.get('GREETING'));",
        deno_dir,
        env={"GREETING": "hi"},
    )
    assert outputs == {"value": "hi"}


async def test_fetch_only_reaches_listed_hosts(deno_dir: Path, http_root: tuple[Path, int]) -> None:
    _, port = http_root
    script = """
    const { url } = Wfe.getData();
    const response = await fetch(url);
    Wfe.setOutput("body", await response.text());
    """
    allowed = DenoPermissions(net=(f"127.0.0.1:{port}",))
    outputs = await run(
        script, deno_dir, data={"url": f"http://127.0.0.1:{port}/hello.txt"}, permissions=allowed
    )
    assert outputs == {"body": "hello from the server"}

    other_port = port + 1 if port < 65535 else port - 1
    with pytest.raises(DenoStepError) as caught:
        await run(
            script,
            deno_dir,
            data={"url": f"http://127.0.0.1:{other_port}/hello.txt"},
            permissions=allowed,
        )
    assert caught.value.kind == "permission"
    assert f"127.0.0.1:{other_port}" in str(caught.value)

    with pytest.raises(DenoStepError) as caught:
        await run(script, deno_dir, data={"url": f"http://127.0.0.1:{port}/hello.txt"})
    assert caught.value.kind == "permission"


async def test_subprocess_is_denied_unless_run_is_granted(deno_dir: Path) -> None:
    script = """
    const result = new Deno.Command("echo", { args: ["spawned"] }).outputSync();
    Wfe.setOutput("out", new TextDecoder().decode(result.stdout).trim());
    """
    with pytest.raises(DenoStepError) as caught:
        await run(script, deno_dir)
    assert caught.value.kind == "permission"
    assert "run access" in str(caught.value)
    assert "permissions.run" in str(caught.value)
    outputs = await run(script, deno_dir, permissions=DenoPermissions(run=True))
    assert outputs == {"out": "spawned"}


async def test_infinite_loop_is_killed_at_its_timeout(deno_dir: Path) -> None:
    start = trio.current_time()
    with pytest.raises(DenoStepError) as caught:
        await run("while (true) {}", deno_dir, timeout=timedelta(seconds=1))
    elapsed = trio.current_time() - start
    assert caught.value.kind == "timeout"
    assert "timed out after 1s" in str(caught.value)
    # Killed at 1 s; the loop never ends, so any return shows the kill (the upper
    # bound only guards a hang on a loaded machine).
    assert 0.9 <= elapsed < 15


async def test_cancelling_the_caller_kills_the_process(deno_dir: Path, log: LogRecorder) -> None:
    script = "Wfe.log(String(Deno.pid));\nwhile (true) {}"
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: run(script, deno_dir, log))
        # Cancel once the script runs (it has logged its pid), not after a guessed delay.
        with trio.fail_after(30):
            while not log.lines("log"):
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    (pid,) = log.lines("log")
    await assert_gone(int(pid))


async def test_timeout_also_kills_subprocesses(deno_dir: Path, log: LogRecorder) -> None:
    script = """
    const child = new Deno.Command("sleep", { args: ["60"] }).spawn();
    Wfe.log(String(child.pid));
    await child.status;
    """
    with pytest.raises(DenoStepError):
        await run(
            script,
            deno_dir,
            log,
            permissions=DenoPermissions(run=True),
            timeout=timedelta(seconds=1),
        )
    (pid,) = log.lines("log")
    await assert_gone(int(pid))


async def test_thrown_error_reports_message_and_script_line(deno_dir: Path) -> None:
    script = "const a = 1;\nconst b = 2;\n\nthrow new RangeError(`bad value ${a + b}`);\n"
    with pytest.raises(DenoStepError) as caught:
        await run(script, deno_dir, modules=())
    error = caught.value
    assert error.kind == "exception"
    assert (error.line, error.column) == (4, 7)
    assert "RangeError: bad value 3" in str(error)
    assert "line 4" in str(error)


async def test_error_line_is_native_even_after_modules(deno_dir: Path, tmp_path: Path) -> None:
    helper = tmp_path / "helper.js"
    helper.write_text("globalThis.helper = (x) => x * 10;\n")
    script = tmp_path / "step.ts"
    script.write_text(
        "const v: number = helper(4);\nWfe.setOutput('v', v);\nthrow new Error('x');\n"
    )
    with pytest.raises(DenoStepError) as caught:
        await run_deno(
            DenoConfig(file=str(script), modules=(str(helper),)),
            {},
            LogRecorder(),
            deno_dir=deno_dir,
        )
    assert caught.value.line == 3
    assert str(script) in str(caught.value)


async def test_error_in_a_timer_callback_is_reported(deno_dir: Path) -> None:
    script = "setTimeout(() => {\n  throw new Error('late');\n}, 10);\n"
    with pytest.raises(DenoStepError) as caught:
        await run(script, deno_dir)
    assert caught.value.kind == "exception"
    assert "late" in str(caught.value)
    assert caught.value.line == 2


async def test_rejected_promise_is_reported(deno_dir: Path) -> None:
    with pytest.raises(DenoStepError) as caught:
        await run("Promise.reject(new TypeError('nope'));", deno_dir)
    assert caught.value.kind == "exception"
    assert "TypeError: nope" in str(caught.value)


async def test_syntax_error_names_the_line(deno_dir: Path) -> None:
    with pytest.raises(DenoStepError) as caught:
        await run("const ok = 1;\nconst broken = ;\n", deno_dir)
    assert caught.value.kind == "exception"
    assert "SyntaxError" in str(caught.value)
    assert caught.value.line == 2


async def test_nonzero_exit_without_exception_is_a_crash(deno_dir: Path) -> None:
    with pytest.raises(DenoStepError) as caught:
        await run("console.error('giving up');\nDeno.exit(3);", deno_dir)
    assert caught.value.kind == "crash"
    assert "code 3" in str(caught.value)
    assert "giving up" in str(caught.value)


async def test_early_successful_exit_keeps_outputs(deno_dir: Path) -> None:
    outputs = await run("Wfe.setOutput('a', 1);\nDeno.exit(0);\nWfe.setOutput('b', 2);", deno_dir)
    assert outputs == {"a": 1}


async def test_outputs_cannot_be_spoofed_through_stdout(deno_dir: Path, log: LogRecorder) -> None:
    outputs = await run(
        """
        const forged = JSON.stringify({ t: "out", name: "approved", value: true });
        console.log(forged);
        console.error(forged);
        await Deno.stdout.write(new TextEncoder().encode(forged + "\\n"));
        Wfe.setOutput("real", 1);
        """,
        deno_dir,
        log,
    )
    assert outputs == {"real": 1}
    assert len(log.lines("stdout")) == 2


async def test_outputs_cannot_be_forged_through_the_channel_path(
    deno_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even with read and write access to the whole temp dir, the channel has no name."""
    import tempfile

    # A temp dir of this test's own: the machine-wide one holds other runs' (live)
    # channel directories, which this script must neither count nor write into.
    temp_root = tempfile.mkdtemp(dir=tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", temp_root)
    outputs = await run(
        """
        const { root } = Wfe.getData();
        const forged = JSON.stringify({ t: "out", name: "approved", value: true }) + "\\n";
        let found = 0;
        for (const dir of Deno.readDirSync(root)) {
          if (!dir.isDirectory || !dir.name.startsWith("wfe-deno-")) continue;
          try {
            for (const entry of Deno.readDirSync(`${root}/${dir.name}`)) {
              if (entry.name.startsWith("channel-")) {
                found += 1;
                Deno.writeTextFileSync(`${root}/${dir.name}/${entry.name}`, forged);
              }
            }
          } catch { /* another run's directory vanished */ }
        }
        Wfe.setOutput("found", found);
        """,
        deno_dir,
        data={"root": temp_root},
        permissions=DenoPermissions(read=(temp_root,), write=(temp_root,)),
    )
    assert outputs == {"found": 0}


async def test_stdin_is_exhausted_before_user_code(deno_dir: Path) -> None:
    outputs = await run(
        "const n = Deno.stdin.readSync(new Uint8Array(16));\nWfe.setOutput('read', n);",
        deno_dir,
        data={"secret": "x"},
    )
    assert outputs == {"read": None}


async def test_local_module_is_loaded_before_the_script(deno_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "helpers.ts").write_text(
        "(globalThis as any).shout = (s: string): string => s.toUpperCase();\n"
    )
    outputs = await run(
        "Wfe.setOutput('v', (globalThis as any).shout('hi'));",
        deno_dir,
        modules=("helpers.ts",),
        working_dir=str(tmp_path),
    )
    assert outputs == {"v": "HI"}


async def test_remote_module_needs_its_host_in_net(
    deno_dir: Path, http_root: tuple[Path, int]
) -> None:
    _, port = http_root
    url = f"http://127.0.0.1:{port}/mod.js"
    script = "Wfe.setOutput('v', (globalThis as any).fromRemote);"
    with pytest.raises(DenoStepError) as caught:
        await run(script, deno_dir, modules=(url,))
    assert caught.value.kind == "permission"
    assert "permissions.net" in str(caught.value)

    outputs = await run(
        script,
        deno_dir,
        modules=(url,),
        permissions=DenoPermissions(net=(f"127.0.0.1:{port}",)),
    )
    assert outputs == {"v": "remote module loaded"}


async def test_remote_import_in_script_is_denied_without_dynamic_import(
    deno_dir: Path, http_root: tuple[Path, int]
) -> None:
    _, port = http_root
    script = f"""
    await import("http://127.0.0.1:{port}/mod.js");
    Wfe.setOutput("v", (globalThis as any).fromRemote);
    """
    net = DenoPermissions(net=(f"127.0.0.1:{port}",))
    with pytest.raises(DenoStepError) as caught:
        await run(script, deno_dir, permissions=net)
    assert caught.value.kind == "permission"
    assert "dynamic_import" in str(caught.value)
    assert caught.value.line == 2

    granted = DenoPermissions(net=(f"127.0.0.1:{port}",), dynamic_import=True)
    outputs = await run(script, deno_dir, permissions=granted)
    assert outputs == {"v": "remote module loaded"}


async def test_npm_packages_are_not_fetched(deno_dir: Path) -> None:
    with pytest.raises(DenoStepError) as caught:
        await run("await import('npm:left-pad');", deno_dir)
    assert caught.value.kind == "permission"
    assert "npm packages are not available" in str(caught.value)


async def test_file_step_runs_with_working_dir(deno_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "lib.ts").write_text("export const answer: number = 42;\n")
    (tmp_path / "step.ts").write_text(
        "import { answer } from './lib.ts';\nWfe.setOutput('answer', answer);\n"
    )
    outputs = await run_deno(
        DenoConfig(file="step.ts", working_dir=str(tmp_path)),
        {},
        LogRecorder(),
        deno_dir=deno_dir,
    )
    assert outputs == {"answer": 42}


async def test_process_runs_in_working_dir(deno_dir: Path, tmp_path: Path) -> None:
    """Relative permission paths and file names resolve against ``working_dir``."""
    (tmp_path / "input.txt").write_text("relative")
    outputs = await run(
        "Wfe.setOutput('text', Deno.readTextFileSync('input.txt'));",
        deno_dir,
        working_dir=str(tmp_path),
        permissions=DenoPermissions(read=("input.txt",)),
    )
    assert outputs == {"text": "relative"}


async def test_missing_working_dir_is_a_clear_error(deno_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(DenoStepError, match=r"working_dir .* is not a directory"):
        await run("1", deno_dir, working_dir=str(tmp_path / "nope"))


async def test_missing_file_is_a_clear_error(deno_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(DenoStepError) as caught:
        await run_deno(
            DenoConfig(file=str(tmp_path / "nope.ts")), {}, LogRecorder(), deno_dir=deno_dir
        )
    assert "nope.ts" in str(caught.value)
    assert "does not exist" in str(caught.value)


async def test_missing_deno_distribution_says_how_to_install(
    deno_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wfe.yaml import _deno

    _deno._deno_binary.cache_clear()
    monkeypatch.setitem(sys.modules, "deno", None)  # makes `import deno` fail
    try:
        with pytest.raises(DenoStepError) as caught:
            await run("Wfe.setOutput('a', 1);", deno_dir)
    finally:
        _deno._deno_binary.cache_clear()
    assert caught.value.kind == "missing"
    assert str(caught.value).endswith(install_command("wfe-yaml[deno]"))


async def test_set_output_rejects_a_bad_name(deno_dir: Path) -> None:
    with pytest.raises(DenoStepError) as caught:
        await run("Wfe.setOutput('', 1);", deno_dir)
    assert "non-empty string" in str(caught.value)


async def test_steps_run_concurrently(deno_dir: Path) -> None:
    results: list[dict[str, Any]] = []

    async def one(i: int) -> None:
        results.append(
            await run(
                "await new Promise((r) => setTimeout(r, 300));\n"
                "Wfe.setOutput('i', Wfe.getData().i);",
                deno_dir,
                data={"i": i},
            )
        )

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        for i in range(4):
            nursery.start_soon(one, i)
    assert sorted(r["i"] for r in results) == [0, 1, 2, 3]
    assert trio.current_time() - start < 2.5
