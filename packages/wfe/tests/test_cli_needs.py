"""``wfe run``/``show``/``resume`` with a YAML workflow whose steps use ``needs``:
real processes, real shells, a real SQLite store."""

from __future__ import annotations

from pathlib import Path

from .cli_support import show_json, started_id, wfe, write

PIPELINE = """\
workflow:
  id: ci
  steps:
    - name: lint
      config: {run: "echo linted"}
    - name: test
      config: {run: "test -e fixed || { echo 'tests broke' >&2; exit 4; }"}
    - name: build
      needs: [lint, test]
      config: {run: "echo built >> runs.log"}
    - name: docs
      needs: [lint]
      config: {run: "echo docs >> runs.log"}
"""


def test_run_shows_failed_and_skipped_steps_and_resume_reruns_only_those(tmp_path: Path) -> None:
    write(tmp_path, "ci.yaml", PIPELINE)
    first = wfe(tmp_path, "run", "ci.yaml", "--plain")
    assert first.returncode == 1, first.stdout + first.stderr
    out = first.stdout
    wid = started_id(out)
    assert "[wfe] step test failed: step 'test' failed with exit code 4" in out
    assert "[wfe] step build skipped (its need 'test' failed)" in out
    assert "[wfe] step docs completed" in out
    assert "(graph worker)" not in out
    assert "(graph unit)" not in out
    assert f"wfe resume {wid}" in out
    shown = show_json(tmp_path, wid)
    status = {s["name"]: s["status"] for s in shown["steps"] if s["name"] != "(graph)"}
    assert status == {"lint": "COMPLETE", "test": "FAILED", "docs": "COMPLETE", "build": "SKIPPED"}
    assert {g["name"]: g["status"] for g in shown["graph"]}["build"] == "skipped"
    text = wfe(tmp_path, "show", wid).stdout
    assert "SKIPPED (its need 'test' failed)" in text
    assert "failed steps:" in text
    assert "test: step 'test' failed with exit code 4" in text
    assert (tmp_path / "runs.log").read_text() == "docs\n"

    (tmp_path / "fixed").touch()
    again = wfe(tmp_path, "resume", wid, "--plain")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "[wfe] step test completed" in again.stdout
    assert "[wfe] step build completed" in again.stdout
    assert "step lint" not in again.stdout
    assert "step docs" not in again.stdout
    assert (tmp_path / "runs.log").read_text() == "docs\nbuilt\n"
    status = {s["name"]: s["status"] for s in show_json(tmp_path, wid)["steps"]}
    assert status["build"] == "COMPLETE"


def test_validate_reports_a_needs_cycle_with_its_position(tmp_path: Path) -> None:
    write(
        tmp_path,
        "cycle.yaml",
        """\
        workflow:
          id: cyc
          steps:
            - {name: a, needs: [c], config: {run: "true"}}
            - {name: b, needs: [a], config: {run: "true"}}
            - {name: c, needs: [b], config: {run: "true"}}
        """,
    )
    result = wfe(tmp_path, "validate", "cycle.yaml")
    assert result.returncode == 1
    assert (
        "cycle.yaml:4:25: workflow.steps[0].needs[0]: `needs` forms a cycle: a -> c -> b -> a"
        in (result.stdout + result.stderr)
    )
