"""Acceptance tests for DESIGN.md §7 (YAML workflows).

Interpolation and shell steps.

Black-box: only the public names written in DESIGN.md §7 (``load_workflow``,
``load_workflow_from_str``, ``validate``, ``CompiledWorkflow.definition``) plus the
host of §5 are used, and behaviour is observed through workflow status, data,
recorded errors and files on disk.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

from wfe.core import WfeError, WorkflowStatus
from wfe.yaml import (
    load_workflow,
    load_workflow_from_str,
)

# The helpers live in a sibling module so that they are importable by name
# (pytest's importlib mode does not put tests/ on sys.path).
sys.path.insert(0, str(Path(__file__).parent))
from yaml_acceptance_support import dedent, listing, one, run, until_dead, write

# --------------------------------------------------------------- interpolation


async def test_var_interpolation_at_load_time() -> None:
    compiled = one(
        """
        workflow:
          id: vars-${{ var.suffix }}
          steps:
            - name: a
              config: {run: 'echo "##wfe[output greeting=hello ${{ var.name }}]"'}
        """,
        {"name": "world", "suffix": "x"},
    )
    assert compiled.definition.id == "vars-x"
    out = await run(compiled)
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["greeting"] == "hello world"


def test_unresolved_var_is_an_error_naming_it() -> None:
    with pytest.raises(WfeError, match="nosuchvar"):
        one("""
            workflow:
              id: novar
              steps:
                - name: a
                  config: {run: 'echo ${{ var.nosuchvar }}'}
            """)


async def test_data_interpolation_at_run_time_reads_inputs_and_earlier_outputs() -> None:
    compiled = one("""
        workflow:
          id: data-interp
          steps:
            - name: first
              config: {run: 'echo "##wfe[output made=${{ data.who }}-1]"'}
            - name: second
              config: {run: 'echo "##wfe[output seen=${{ data.made }}]"'}
        """)
    out = await run(compiled, {"who": "alice"})
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["made"] == "alice-1"
    assert out.data["seen"] == "alice-1"


async def test_unresolved_data_name_is_a_step_error_naming_it(tmp_path: Path) -> None:
    compiled = one(f"""
        workflow:
          id: nodata
          steps:
            - name: a
              config: {{run: 'echo ${{{{ data.missing_thing }}}}; touch {tmp_path}/ran'}}
        """)
    out = await run(compiled)
    assert out.status != WorkflowStatus.COMPLETE
    assert "missing_thing" in out.error_text()
    assert not (tmp_path / "ran").exists()


INJECTIONS = [
    "$(touch {p}/pwned1)",
    "`touch {p}/pwned2`",
    '"; touch {p}/pwned3; echo "',
    "'; touch {p}/pwned4; echo '",
    "x\ntouch {p}/pwned5",
    "a; touch {p}/pwned6",
    "$HOME ${{IFS}} && touch {p}/pwned7 | cat",
]


@pytest.mark.parametrize("payload", INJECTIONS)
async def test_data_cannot_inject_shell_syntax(tmp_path: Path, payload: str) -> None:
    """A data value stays data, whether the expression is bare or in double quotes."""
    value = payload.format(p=tmp_path)
    bare = tmp_path / "bare.txt"
    quoted = tmp_path / "quoted.txt"
    compiled = one(f"""
        workflow:
          id: inject
          steps:
            - name: bare
              config:
                run: printf '%s' ${{{{ data.v }}}} > {bare}
            - name: quoted
              config:
                run: printf '%s' "${{{{ data.v }}}}" > {quoted}
        """)
    out = await run(compiled, {"v": value})
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert not [n for n in listing(tmp_path) if n.startswith("pwned")]
    assert quoted.read_text() == value
    assert bare.read_text() == value


async def test_data_values_from_outputs_cannot_inject(tmp_path: Path) -> None:
    compiled = one(f"""
        workflow:
          id: inject-outputs
          steps:
            - name: producer
              config:
                run: echo '##wfe[output evil=$(touch {tmp_path}/pwned)]'
            - name: consumer
              config:
                run: echo "${{{{ data.evil }}}}" ${{{{ data.evil }}}}
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert not (tmp_path / "pwned").exists()


# ----------------------------------------------------------------- shell steps


async def test_top_level_data_keys_are_exported_upper_cased() -> None:
    compiled = one("""
        workflow:
          id: envs
          inputs: {branch: string, count: integer}
          steps:
            - name: a
              config:
                run: |
                  echo "##wfe[output b=$BRANCH]"
                  echo "##wfe[output c=$COUNT]"
        """)
    out = await run(compiled, {"branch": "main", "count": 3})
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["b"] == "main"
    assert out.data["c"] == 3


async def test_outputs_are_typed() -> None:
    compiled = one("""
        workflow:
          id: typed-out
          steps:
            - name: a
              config:
                run: |
                  echo "##wfe[output t=true]"
                  echo "##wfe[output f=false]"
                  echo "##wfe[output z=null]"
                  echo "##wfe[output i=42]"
                  echo "##wfe[output neg=-7]"
                  echo "##wfe[output x=3.5]"
                  echo "##wfe[output s=hello world]"
                  echo "##wfe[output v=1.2.3]"
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    d = out.data
    assert d["t"] is True
    assert d["f"] is False
    assert "z" in d
    assert d["z"] is None
    assert d["i"] == 42
    assert type(d["i"]) is int
    assert d["neg"] == -7
    assert d["x"] == 3.5
    assert type(d["x"]) is float
    assert d["s"] == "hello world"
    assert d["v"] == "1.2.3"


def _kept(data: dict[str, Any], step: str, stream: str) -> str:
    """A step's kept stdout/stderr: ``data["<step>.<stream>"]`` or ``data["steps"][step]``."""
    if f"{step}.{stream}" in data:
        return str(data[f"{step}.{stream}"])
    return str(data["steps"][step][stream])


async def test_stdout_and_stderr_are_kept() -> None:
    compiled = one("""
        workflow:
          id: kept
          steps:
            - name: talk
              config: {run: "echo to-out; echo to-err >&2"}
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert "to-out" in _kept(out.data, "talk", "stdout")
    assert "to-err" in _kept(out.data, "talk", "stderr")


async def test_stdout_and_stderr_are_kept_as_step_dot_stream_keys() -> None:
    compiled = one("""
        workflow:
          id: kept-literal
          steps:
            - name: talk
              config: {run: "echo to-out; echo to-err >&2"}
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert "to-out" in out.data["talk.stdout"]
    assert "to-err" in out.data["talk.stderr"]


async def test_kept_stdout_is_bounded() -> None:
    compiled = one("""
        workflow:
          id: bounded
          steps:
            - name: loud
              config: {run: "head -c 3000000 /dev/zero | tr '\\\\0' 'a'; echo; echo END"}
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    kept = _kept(out.data, "loud", "stdout")
    assert len(kept) < 1_000_000
    assert "END" in kept


async def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    marker = tmp_path / "survivor"
    pidfile = tmp_path / "survivor.pid"
    compiled = one(f"""
        workflow:
          id: timeout
          steps:
            - name: slow
              config:
                run: (sleep 2; touch {marker}) & echo $! > {pidfile}; sleep 30
                timeout: 500ms
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.SUSPENDED
    # The step sleeps 30 s: finishing well before shows it was killed at its timeout.
    assert out.elapsed < 15.0
    assert re.search(r"(?i)time", out.error_text())
    # The background subshell is the one that would touch the marker: once it is dead
    # it never will.
    await until_dead(int(pidfile.read_text()))
    assert not marker.exists()


async def test_nonzero_exit_is_an_error_with_exit_code_and_stderr_tail() -> None:
    compiled = one("""
        workflow:
          id: exitcode
          steps:
            - name: fails
              config: {run: "for i in 1 2 3; do echo line$i >&2; done; echo last-words >&2; exit 7"}
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.SUSPENDED
    text = out.error_text()
    assert re.search(r"\b7\b", text)
    assert "last-words" in text


async def test_shell_key_env_and_working_dir(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    path = write(
        tmp_path / "wf.yaml",
        """
        workflow:
          id: shellkeys
          steps:
            - name: a
              config:
                shell: bash
                env: {EXTRA: from-env, FROM_DATA: "${{ data.x }}"}
                working_dir: work
                run: |
                  [[ -n "$BASH_VERSION" ]] && echo "##wfe[output bash=true]"
                  echo "##wfe[output extra=$EXTRA]"
                  echo "##wfe[output fromdata=$FROM_DATA]"
                  echo "##wfe[output dir=$(basename "$PWD")]"
        """,
    )
    out = await run(load_workflow(path, {}), {"x": "xval"})
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["bash"] is True
    assert out.data["extra"] == "from-env"
    assert out.data["fromdata"] == "xval"
    assert out.data["dir"] == "work"


async def test_shell_file_runs_a_script(tmp_path: Path) -> None:
    (tmp_path / "script.sh").write_text('echo "##wfe[output fromfile=yes]"\n')
    path = write(
        tmp_path / "wf.yaml",
        """
        workflow:
          id: shellfile
          steps:
            - name: a
              type: shell
              config: {file: script.sh}
        """,
    )
    out = await run(load_workflow(path, {}))
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["fromfile"] == "yes"


async def test_step_outputs_key_requires_the_named_output() -> None:
    compiled = one("""
        workflow:
          id: step-outputs
          steps:
            - name: a
              outputs: [needed]
              config: {run: 'echo "##wfe[output other=1]"'}
        """)
    out = await run(compiled)
    assert out.status != WorkflowStatus.COMPLETE
    assert "needed" in out.error_text()


async def test_workflow_step_type_runs_a_child() -> None:
    compiled = load_workflow_from_str(
        dedent("""
        workflows:
          - id: outer
            steps:
              - name: call
                type: workflow
                config: {workflow: inner, version: 2}
              - name: after
                config: {run: 'echo "##wfe[output got=$CHILD]"'}
          - id: inner
            version: 2
            steps:
              - name: work
                config: {run: 'echo child=done >> "$WFE_OUTPUT"'}
        """),
        {},
    )
    out = await run(compiled)
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["got"] == "done"
