"""``wfe show ID --graph``: the real ``wfe`` command on a real SQLite store, with
definitions remembered from ``wfe run`` or given as a file or ``--import``."""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from .cli_support import started_id, wfe, write

PIPELINE = """\
workflow:
  id: ci
  steps:
    - name: lint
      config: {run: "echo linted"}
    - name: test
      matrix: {n: [1, 2]}
      config: {run: "exit 3"}
    - name: build
      needs: [lint, test]
      config: {run: "echo built"}
    - name: docs
      needs: [lint]
      config: {run: "echo docs"}
"""

ORDER = """\
from wfe.core import WorkflowBuilder

def work(ctx):
    return None

definition = (
    WorkflowBuilder(dict)
    .start_with(work).name("reserve")
    .saga(lambda s: s.start_with(work).name("charge").compensate_with(work))
    .name("payment")
    .wait_for("shipped", "k1").name("wait shipped")
    .build("order", 4)
)
"""

SVG = "{http://www.w3.org/2000/svg}"


def mermaid_states(text: str) -> dict[str, str]:
    """Node label -> state class, from the ``class`` lines of a Mermaid chart."""
    labels: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("s") and '"' in line and " -" not in line and "==>" not in line:
            node_id, _, rest = line.partition("[")
            labels[node_id] = rest.split('"')[1]
    states: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "class" and parts[2].startswith("state_"):
            for node_id in parts[1].split(","):
                states[labels.get(node_id, node_id)] = parts[2].removeprefix("state_")
    return states


def test_graph_of_a_failed_pipeline_shows_its_jobs_and_their_states(tmp_path: Path) -> None:
    write(tmp_path, "ci.yaml", PIPELINE)
    run = wfe(tmp_path, "run", "ci.yaml", "--plain")
    assert run.returncode == 1, run.stdout + run.stderr
    wid = started_id(run.stdout)

    shown = wfe(tmp_path, "show", wid, "--graph")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("flowchart TD\n")
    assert "(graph" not in shown.stdout  # the scheduling steps are not drawn
    states = mermaid_states(shown.stdout)
    assert states["lint"] == "complete"
    assert states["docs"] == "complete"
    assert states["test [matrix \u00d72: n: 1, 2]"] == "failed"
    assert states["build"] == "skipped"

    as_json = wfe(tmp_path, "show", wid, "--graph", "--json")
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["workflow_id"] == "ci"
    assert data["instance_id"] == wid
    jobs = {n["label"].split(" [")[0]: n["id"] for n in data["nodes"] if n["kind"] == "job"}
    assert set(jobs) == {"lint", "test", "build", "docs"}
    needs = {(e["source"], e["target"]) for e in data["edges"] if e["kind"] == "needs"}
    assert (jobs["test"], jobs["build"]) in needs
    assert (jobs["lint"], jobs["docs"]) in needs
    assert data["states"][jobs["build"]] == "skipped"

    svg = wfe(tmp_path, "show", wid, "--graph", "--format", "svg")
    assert svg.returncode == 0, svg.stderr
    nodes = ET.fromstring(svg.stdout).findall(f".//{SVG}g[@class='node']")
    assert {g.get("data-node-id"): g.get("data-state") for g in nodes}[jobs["test"]] == "failed"

    dot = wfe(tmp_path, "show", wid, "--graph", "--format", "dot")
    assert dot.returncode == 0, dot.stderr
    assert dot.stdout.startswith('digraph "ci v1" {')
    if shutil.which("dot") is not None:  # Graphviz, when installed, must accept it
        checked = subprocess.run(
            ["dot", "-Tsvg"], input=dot.stdout, capture_output=True, text=True, check=False
        )
        assert checked.returncode == 0, checked.stderr


def test_unknown_definition_is_a_clear_error_and_a_file_makes_it_known(tmp_path: Path) -> None:
    write(tmp_path, "ci.yaml", PIPELINE)
    wid = started_id(wfe(tmp_path, "run", "ci.yaml", "--plain").stdout)
    (tmp_path / ".wfe" / "definitions.json").unlink()
    missing = wfe(tmp_path, "show", wid, "--graph")
    assert missing.returncode == 2
    assert f"workflow {wid} runs 'ci' version 1, which is not known here" in missing.stderr
    assert f"wfe show {wid} FILE.yaml --graph" in missing.stderr
    assert "Traceback" not in missing.stderr
    given = wfe(tmp_path, "show", wid, "ci.yaml", "--graph", "--format", "dot")
    assert given.returncode == 0, given.stderr
    assert '"build"' in given.stdout
    after = wfe(tmp_path, "show", wid, "--graph", "ci.yaml")  # the file after the option
    assert after.returncode == 0, after.stderr
    assert after.stdout.startswith("flowchart TD")
    unknown = wfe(tmp_path, "show", wid, "--graph", "--colour")
    assert unknown.returncode == 2
    assert "unrecognized arguments: --colour" in unknown.stderr
    # The timeline without --graph is as before; graph options alone are refused.
    timeline = wfe(tmp_path, "show", wid)
    assert timeline.returncode == 0
    assert "steps:" in timeline.stdout
    refused = wfe(tmp_path, "show", wid, "--format", "dot")
    assert refused.returncode == 2
    assert "--format only go with --graph" in refused.stderr
    nothing = wfe(tmp_path, "show", "nope", "--graph")
    assert nothing.returncode == 2
    assert "no workflow 'nope'" in nothing.stderr


def test_graph_of_a_code_defined_workflow_remembered_from_its_import(tmp_path: Path) -> None:
    write(tmp_path, "order.py", ORDER)
    started = wfe(tmp_path, "run", "--import", "order", "--detach")
    assert started.returncode == 0, started.stderr
    wid = started_id(started.stdout)
    shown = wfe(tmp_path, "show", wid, "--graph")
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert 'subgraph cs1 ["payment (saga)"]' in text
    assert 's2["charge"]' in text
    assert 's2 -.->|"compensate"| s3' in text
    assert 's4(["wait shipped"])' in text
    assert "s1 --> s4" in text


@pytest.mark.parametrize("args", [["show", "--help"]])
def test_help_names_the_graph_option(tmp_path: Path, args: list[str]) -> None:
    helped = wfe(tmp_path, *args)
    assert helped.returncode == 0
    assert "--graph" in helped.stdout
    assert "mermaid,dot,svg" in helped.stdout
