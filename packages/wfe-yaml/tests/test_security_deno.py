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
        const stringify = JSON.stringify;
        JSON.stringify = () => '{"t":"out","name":"forged","value":2}';
        TextEncoder.prototype.encode = () => new Uint8Array([123, 10]);
        const original = Deno.FsFile.prototype.writeSync;
        Deno.FsFile.prototype.writeSync = function (bytes) {
          captured = this;
          return original.call(this, bytes);
        };
        Wfe.setOutput("real", 1);
        JSON.stringify = stringify;
        if (captured !== null) {
          captured.writeSync(new TextEncoder().encode('{"t":"out","name":"forged","value":1}\\n'));
        }
        Wfe.setOutput("seen", captured === null);
        """)
    )
    out = await run(compiled)
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["seen"] is True
    assert out.data["real"] == 1
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


@pytest.mark.parametrize("link", ["file", "directory"])
async def test_a_symlink_inside_a_read_grant_cannot_escape_it(tmp_path: Path, link: str) -> None:
    granted = tmp_path / "granted"
    granted.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("SECRET")
    if link == "file":
        (granted / "link").symlink_to(outside / "secret.txt")
        read = "Deno.readTextFileSync(Wfe.getData().dir + '/link')"
    else:
        (granted / "link").symlink_to(outside)
        read = "Deno.readTextFileSync(Wfe.getData().dir + '/link/secret.txt')"
    compiled = one(deno(f'Wfe.setOutput("got", {read});', f"permissions: {{read: [{granted}]}}"))
    out = await run(compiled, {"dir": str(granted)})
    assert out.status != WorkflowStatus.COMPLETE
    assert "got" not in out.data
    assert "denied by its sandbox" in out.error_text()
    assert "SECRET" not in out.error_text()


async def test_the_rest_of_a_grant_holding_an_escaping_link_stays_usable(tmp_path: Path) -> None:
    granted = tmp_path / "granted"
    granted.mkdir()
    (granted / "own.txt").write_text("mine")
    (granted / "out").symlink_to("/etc")
    script = 'Wfe.setOutput("got", Deno.readTextFileSync(Wfe.getData().dir + "/own.txt"));'
    compiled = one(deno(script, f"permissions: {{read: [{granted}]}}"))
    out = await run(compiled, {"dir": str(granted)})
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["got"] == "mine"


async def test_links_that_stay_inside_the_grant_and_granted_links_work(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "a.txt").write_text("A")
    (real / "alias.txt").symlink_to(real / "a.txt")
    (tmp_path / "via").symlink_to(real)
    script = 'Wfe.setOutput("got", Deno.readTextFileSync(Wfe.getData().dir + "/alias.txt"));'
    compiled = one(deno(script, f"permissions: {{read: [{tmp_path / 'via'}]}}"))
    out = await run(compiled, {"dir": str(tmp_path / "via")})
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["got"] == "A"


async def test_a_large_output_within_the_limit_arrives_whole() -> None:
    script = 'Wfe.setOutput("big", "y".repeat(900000));'
    out = await run(one(deno(script)))
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["big"] == "y" * 900_000


async def test_a_huge_output_fails_clearly_without_stalling(tmp_path: Path) -> None:
    out = await run(one(deno('Wfe.setOutput("huge", "z".repeat(50_000_000));')), timeout=30)
    assert out.status != WorkflowStatus.COMPLETE
    assert "max_output_size" in out.error_text()


async def test_a_nul_byte_in_a_deno_env_value_is_a_clear_step_error() -> None:
    text = deno('Wfe.setOutput("x", 1);', 'env: {V: "${{ data.v }}"}')
    out = await run(one(text), {"v": "a\0b"})
    assert out.status != WorkflowStatus.COMPLETE
    assert "env V" in out.error_text()
    assert "NUL byte" in out.error_text()


@pytest.mark.parametrize(
    "line",
    ["not json", "[1]", '{"t":"out"}', '{"t":"out","name":"__proto__","value":1}', '{"t":"x"}'],
)
async def test_a_malformed_channel_record_breaks_the_channel_with_a_reason(
    tmp_path: Path, line: str
) -> None:
    from wfe.yaml._deno_channel import Channel

    channel = Channel(tmp_path / "fifo", lambda kind, text: None)
    try:
        channel._handle(line)
        assert channel.broken
        assert channel.outputs == {}
    finally:
        channel.close()
