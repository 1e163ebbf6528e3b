"""``wfe run --secret``: secrets reach steps, are masked everywhere and never stored
(real processes, real shells, the real SQLite file)."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

from .cli_support import started_id, wfe_cmd, write

SECRET = "s3cr3t-Tok3n-$(touch pwned)-42"
B64 = base64.b64encode(SECRET.encode()).decode()

PIPELINE = """\
workflow:
  id: pub
  secrets: [API_TOKEN]
  steps:
    - name: use
      config:
        run: |
          echo "env: $API_TOKEN"
          echo "expr: ${{ secrets.API_TOKEN }}"
          printf %s "$API_TOKEN" | base64
          echo "leak=$API_TOKEN" >> $WFE_OUTPUT
          echo "##wfe[output printed=${{ secrets.API_TOKEN }}]"
    - name: fail
      config:
        run: |
          echo "bad token $API_TOKEN" >&2
          test -e fixed
"""


def run(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        wfe_cmd(*args),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


def stored_bytes(cwd: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (cwd / ".wfe").rglob("*") if p.is_file())


def test_secrets_reach_steps_masked_everywhere_and_never_stored(tmp_path: Path) -> None:
    write(tmp_path, "pub.yaml", PIPELINE)
    first = run(
        tmp_path, "run", "pub.yaml", "--secret", "API_TOKEN", "--plain", env={"API_TOKEN": SECRET}
    )
    assert first.returncode == 1, first.stdout + first.stderr
    printed = first.stdout + first.stderr
    wid = started_id(first.stdout)
    assert SECRET not in printed
    assert B64 not in printed
    assert "env: ***" in printed
    assert "expr: ***" in printed
    assert "bad token ***" in printed
    assert not (tmp_path / "pwned").exists()  # inserted as data, never as shell syntax

    show = run(tmp_path, "show", wid, "--json")
    assert show.returncode == 0, show.stderr
    assert SECRET not in show.stdout
    assert B64 not in show.stdout
    assert '"leak": "***"' in show.stdout
    assert "bad token ***" in show.stdout
    assert SECRET.encode() not in stored_bytes(tmp_path)
    assert B64.encode() not in stored_bytes(tmp_path)

    # After the process ends, nobody has the secret: resuming needs it again.
    (tmp_path / "fixed").touch()
    refused = run(tmp_path, "resume", wid, "--plain")
    assert refused.returncode == 2
    assert "needs secret(s) API_TOKEN: give --secret API_TOKEN" in refused.stderr
    (tmp_path / "token").write_text(SECRET + "\n")
    again = run(tmp_path, "resume", wid, "--secret", "API_TOKEN=@token", "--plain")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "bad token ***" in again.stdout
    assert SECRET not in again.stdout + again.stderr
    assert SECRET.encode() not in stored_bytes(tmp_path)


def test_secret_values_are_never_taken_from_the_command_line(tmp_path: Path) -> None:
    write(tmp_path, "pub.yaml", PIPELINE)
    result = run(tmp_path, "run", "pub.yaml", "--secret", "API_TOKEN=hunter22")
    assert result.returncode == 2
    assert "never given on the command line" in result.stderr
    assert "hunter22" not in result.stderr + result.stdout


def test_missing_and_undeclared_secrets_are_named(tmp_path: Path) -> None:
    write(tmp_path, "pub.yaml", PIPELINE)
    missing = run(tmp_path, "run", "pub.yaml")
    assert missing.returncode == 2
    assert "workflow 'pub' needs secret(s) API_TOKEN: give --secret API_TOKEN" in missing.stderr
    extra = run(
        tmp_path,
        "run",
        "pub.yaml",
        "--secret",
        "API_TOKEN",
        "--secret",
        "OTHER",
        env={"API_TOKEN": "abcd", "OTHER": "efgh"},
    )
    assert extra.returncode == 2
    assert "--secret OTHER: workflow 'pub' does not declare it" in extra.stderr
    env_missing = run(
        tmp_path,
        "run",
        "pub.yaml",
        "--secret",
        "API_TOKEN",
        env={k: v for k, v in os.environ.items() if k != "API_TOKEN"},
    )
    assert "the environment variable API_TOKEN is not set" in env_missing.stderr
