"""Acceptance tests for DESIGN.md §7 (YAML workflows).

Deno steps: data, outputs, permissions, timeouts, modules.

Black-box: only the public names written in DESIGN.md §7 (``load_workflow``,
``load_workflow_from_str``, ``validate``, ``CompiledWorkflow.definition``) plus the
host of §5 are used, and behaviour is observed through workflow status, data,
recorded errors and files on disk.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from wfe.core import WfeError, WorkflowStatus
from wfe.yaml import (
    YamlWorkflowError,
    load_workflow,
)

# The helpers live in a sibling module so that they are importable by name
# (pytest's importlib mode does not put tests/ on sys.path).
sys.path.insert(0, str(Path(__file__).parent))
from yaml_acceptance_support import one, run, write

# ------------------------------------------------------------------ deno steps


async def test_deno_reads_data_and_sets_outputs_of_every_json_type() -> None:
    compiled = one("""
        workflow:
          id: deno-types
          steps:
            - name: js
              type: deno
              config:
                script: |
                  const d = Wfe.getData();
                  Wfe.log("got", d.name);
                  Wfe.setOutput("s", `hi ${d.name}`);
                  Wfe.setOutput("i", d.n + 1);
                  Wfe.setOutput("f", 2.5);
                  Wfe.setOutput("t", true);
                  Wfe.setOutput("no", false);
                  Wfe.setOutput("z", null);
                  Wfe.setOutput("l", [1, "two", [3], {"four": 4}]);
                  Wfe.setOutput("o", {"a": {"b": [true, null]}});
                  Wfe.setOutput("e", "");
        """)
    out = await run(compiled, {"name": "deno", "n": 41})
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    d = out.data
    assert d["s"] == "hi deno"
    assert d["i"] == 42
    assert d["f"] == 2.5
    assert d["t"] is True
    assert d["no"] is False
    assert "z" in d
    assert d["z"] is None
    assert d["l"] == [1, "two", [3], {"four": 4}]
    assert d["o"] == {"a": {"b": [True, None]}}
    assert d["e"] == ""


async def test_deno_typescript_file(tmp_path: Path) -> None:
    (tmp_path / "step.ts").write_text(
        'const x: number = 6;\nWfe.setOutput("ts", x * 7);\n',
    )
    path = write(
        tmp_path / "wf.yaml",
        """
        workflow:
          id: deno-file
          steps:
            - name: ts
              type: deno
              config: {file: step.ts}
        """,
    )
    out = await run(load_workflow(path, {}))
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["ts"] == 42


async def test_deno_file_read_is_denied_without_permission(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    compiled = one(f"""
        workflow:
          id: deno-denied
          steps:
            - name: js
              type: deno
              config:
                script: |
                  Wfe.setOutput("c", Deno.readTextFileSync("{secret}"));
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.SUSPENDED
    assert "c" not in out.data
    assert re.search(r"(?i)read|permission|denied", out.error_text())


async def test_deno_file_read_is_allowed_with_read_permission(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    compiled = one(f"""
        workflow:
          id: deno-allowed
          steps:
            - name: js
              type: deno
              config:
                permissions:
                  read: ["{secret}"]
                script: |
                  Wfe.setOutput("c", Deno.readTextFileSync("{secret}"));
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["c"] == "top secret"


async def test_deno_env_is_denied_without_permission() -> None:
    compiled = one("""
        workflow:
          id: deno-env
          steps:
            - name: js
              type: deno
              config:
                script: |
                  Wfe.setOutput("home", Deno.env.get("HOME") ?? "none");
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.SUSPENDED


async def test_deno_infinite_loop_is_killed_at_its_timeout() -> None:
    compiled = one("""
        workflow:
          id: deno-loop
          steps:
            - name: spin
              type: deno
              config:
                timeout: 1s
                script: |
                  while (true) {}
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.SUSPENDED
    # The loop never ends: finishing at all shows the kill; the bound guards a hang.
    assert out.elapsed < 15.0
    assert re.search(r"(?i)time", out.error_text())


async def test_deno_thrown_error_reports_its_line() -> None:
    compiled = one("""
        workflow:
          id: deno-throw
          steps:
            - name: thrower
              type: deno
              config:
                script: |
                  const a = 1;
                  const b = a + 1;
                  throw new Error("boom " + b);
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.SUSPENDED
    text = out.error_text()
    assert "boom 2" in text
    assert re.search(r"(?i)line\D{0,3}3\b|:3:\d+", text), text


async def test_deno_modules_are_imported_first(tmp_path: Path) -> None:
    (tmp_path / "helper.js").write_text("globalThis.HELPER_VALUE = 41;\n")
    path = write(
        tmp_path / "wf.yaml",
        """
        workflow:
          id: deno-modules
          steps:
            - name: js
              type: deno
              config:
                modules: [./helper.js]
                script: |
                  Wfe.setOutput("v", globalThis.HELPER_VALUE + 1);
        """,
    )
    out = await run(load_workflow(path, {}))
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["v"] == 42


def test_deno_unknown_permission_is_a_validation_error() -> None:
    with pytest.raises(WfeError, match="everything"):
        one("""
            workflow:
              id: deno-badperm
              steps:
                - name: js
                  type: deno
                  config:
                    permissions: {everything: true}
                    script: Wfe.setOutput("x", 1);
            """)


async def test_deno_env_is_allowed_with_env_permission() -> None:
    compiled = one("""
        workflow:
          id: deno-env-ok
          steps:
            - name: js
              type: deno
              config:
                permissions: {env: [WFE_ACCEPTANCE_VAR]}
                env: {WFE_ACCEPTANCE_VAR: visible}
                script: |
                  Wfe.setOutput("v", Deno.env.get("WFE_ACCEPTANCE_VAR") ?? "none");
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["v"] == "visible"


async def test_deno_var_interpolation_at_load_time() -> None:
    compiled = one(
        """
        workflow:
          id: deno-var
          steps:
            - name: js
              type: deno
              config:
                script: Wfe.setOutput("who", "${{ var.who }}");
        """,
        {"who": "carol"},
    )
    out = await run(compiled)
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["who"] == "carol"


async def test_deno_script_reads_data_through_the_private_channel() -> None:
    """Deno scripts read workflow data with Wfe.getData(); pasting `${{ data.x }}` into
    the source is refused at load time with a message saying so (issue 7: data travels
    over a private channel, never into the script's source)."""
    with pytest.raises(YamlWorkflowError, match=r"Wfe\.getData\(\)"):
        one("""
            workflow:
              id: deno-data
              steps:
                - name: js
                  type: deno
                  config:
                    script: Wfe.setOutput("who", "${{ data.who }}");
            """)
    compiled = one("""
        workflow:
          id: deno-data
          steps:
            - name: js
              type: deno
              config:
                script: Wfe.setOutput("who", Wfe.getData().who);
        """)
    out = await run(compiled, {"who": "dave"})
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["who"] == "dave"
