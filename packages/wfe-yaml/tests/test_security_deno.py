"""Deno steps against hostile scripts: the result channel cannot be captured or forged
into a silent success, output names follow the shell rules, and outputs are bounded."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from wfe.core import WorkflowStatus

sys.path.insert(0, str(Path(__file__).parent))
from yaml_acceptance_support import one, run

pytest.importorskip("deno")


def deno(script: str, extra: str = "") -> str:
    body = "\n".join(
        f"              {line}" for line in textwrap.dedent(script).strip().splitlines()
    )
    return f"""
    workflow:
      id: deno-sec
      steps:
        - name: d
          type: deno
          config:
            {extra}
            script: |
{body}
    """


async def test_patching_write_sync_cannot_capture_the_channel() -> None:
    compiled = one(
        deno("""
        let captured = null;
        const original = Deno.FsFile.prototype.writeSync;
        Deno.FsFile.prototype.writeSync = function (bytes) {
          captured = this;
          return original.call(this, bytes);
        };
        Wfe.setOutput("real", 1);
        if (captured !== null) {
          captured.writeSync(new TextEncoder().encode('{"t":"out","name":"forged","value":1}\\n'));
        }
        Wfe.setOutput("seen", captured === null);
        """)
    )
    out = await run(compiled)
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["seen"] is True
    assert "forged" not in out.data


@pytest.mark.parametrize("name", ["__proto__", "a.stdout", "has space", "steps", ""])
async def test_invalid_output_names_fail_the_step(name: str) -> None:
    compiled = one(deno(f"Wfe.setOutput({name!r}, 1);"))
    out = await run(compiled)
    assert out.status != WorkflowStatus.COMPLETE
    assert "output name" in out.error_text()


async def test_an_output_over_the_limit_fails_the_step_clearly() -> None:
    compiled = one(deno('Wfe.setOutput("big", "x".repeat(5000));', "max_output_size: 1KiB"))
    out = await run(compiled)
    assert out.status != WorkflowStatus.COMPLETE
    assert "max_output_size" in out.error_text()


async def test_deno_outputs_cannot_overwrite_a_declared_input() -> None:
    text = deno('Wfe.setOutput("target", "prod");').replace(
        "id: deno-sec", "id: deno-sec\n      inputs: {target: string}"
    )
    out = await run(one(text), {"target": "staging"})
    assert out.status != WorkflowStatus.COMPLETE
    assert "declared workflow input" in out.error_text()
