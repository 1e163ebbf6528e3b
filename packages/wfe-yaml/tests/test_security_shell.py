"""Shell steps against untrusted data and output: outputs through $WFE_OUTPUT, what reaches
the environment, values no variable can carry, and load-time-only keys (issue 11)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import trio

from wfe.core import WorkflowStatus
from wfe.yaml import validate

sys.path.insert(0, str(Path(__file__).parent))
from yaml_acceptance_support import dedent, issues_text, one, run, write


async def test_outputs_written_to_wfe_output_are_set_and_exported() -> None:
    compiled = one("""
        workflow:
          id: file-out
          steps:
            - name: a
              config:
                run: |
                  echo "count=3" >> "$WFE_OUTPUT"
                  printf 'notes<<END\\nline one\\nline "two"\\nEND\\n' >> "$WFE_OUTPUT"
            - name: b
              config: {run: 'echo "##wfe[output seen=$COUNT/${#NOTES}]"'}
              outputs: [seen]
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["count"] == 3
    assert out.data["notes"] == 'line one\nline "two"'
    assert out.data["seen"] == f"3/{len(out.data['notes'])}"
    assert out.data["steps"]["a"]["exports"] == ["count", "notes"]


async def test_stdout_cannot_overwrite_a_declared_input_or_flip_a_condition(
    tmp_path: Path,
) -> None:
    untrusted = tmp_path / "untrusted.txt"
    untrusted.write_text("##wfe[output target=prod]\n##wfe[output deploy=true]\n")
    compiled = one(f"""
        workflow:
          id: no-overwrite
          inputs: {{target: string}}
          steps:
            - name: read
              config: {{run: 'cat {untrusted}'}}
            - name: deploy
              when: {{field: .inputs.target, equals: prod}}
              config: {{run: 'touch {tmp_path}/deployed'}}
        """)
    out = await run(compiled, {"target": "staging"})
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["target"] == "staging"
    assert not (tmp_path / "deployed").exists()


async def test_wfe_output_cannot_overwrite_a_declared_input() -> None:
    compiled = one("""
        workflow:
          id: no-overwrite-file
          inputs: {target: string}
          steps:
            - name: a
              config: {run: 'echo target=prod >> "$WFE_OUTPUT"'}
        """)
    out = await run(compiled, {"target": "staging"})
    assert out.status != WorkflowStatus.COMPLETE
    assert "would overwrite the declared workflow input 'target'" in out.error_text()


async def test_a_step_declaring_outputs_sets_only_those() -> None:
    compiled = one("""
        workflow:
          id: only-declared
          steps:
            - name: a
              outputs: [result]
              config:
                run: |
                  echo "##wfe[output result=ok]"
                  echo "##wfe[output other=evil]"
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["result"] == "ok"
    assert "other" not in out.data


async def test_untrusted_stdout_and_start_data_configure_no_later_program(
    tmp_path: Path,
) -> None:
    """GIT_CONFIG_*, PERL5OPT and the like, from stdout or start data, stay out of the
    environment of later steps: a later `git`/`perl` runs nothing of theirs."""
    pwned = tmp_path / "pwned"
    payload = tmp_path / "payload.txt"
    payload.write_text(
        "##wfe[output GIT_CONFIG_COUNT=1]\n"
        "##wfe[output GIT_CONFIG_KEY_0=core.fsmonitor]\n"
        f"##wfe[output GIT_CONFIG_VALUE_0=touch {pwned}]\n"
        f"##wfe[output PERL5OPT=-Mstrict;system(q(touch {pwned}))]\n"
    )
    compiled = one(f"""
        workflow:
          id: no-export
          inputs: {{branch: string}}
          steps:
            - name: read
              config: {{run: 'cat {payload}'}}
            - name: check
              config:
                run: |
                  echo "##wfe[output seen=${{GIT_CONFIG_COUNT:-unset}}/${{PERL5OPT:-unset}}]"
                  echo "##wfe[output branch_env=$BRANCH/${{EXTRA:-unset}}]"
              outputs: [seen, branch_env]
        """)
    out = await run(compiled, {"branch": "main", "extra": "x", "pip_index_url": "http://evil"})
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["seen"] == "unset/unset"
    assert out.data["branch_env"] == "main/unset"
    assert out.data["GIT_CONFIG_COUNT"] == 1  # still data, usable through ${{ }}
    assert not pwned.exists()


async def test_all_data_is_in_the_wfe_data_file() -> None:
    compiled = one("""
        workflow:
          id: data-file
          steps:
            - name: a
              outputs: [got]
              config:
                run: |
                  python3 -c 'import json,os; d=json.load(open(os.environ["WFE_DATA"]));
                  print("##wfe[output got=" + d["note"] + "]")'
        """)
    out = await run(compiled, {"note": "from the file"})
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["got"] == "from the file"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("a\0b", "NUL byte"), ("x" * 200_000, "more than the")],
)
async def test_values_no_variable_can_carry_fail_naming_the_expression(
    value: str, expected: str
) -> None:
    compiled = one("""
        workflow:
          id: odd
          steps:
            - name: a
              config: {run: 'printf %s ${{ data.v }}'}
        """)
    out = await run(compiled, {"v": value})
    assert out.status != WorkflowStatus.COMPLETE
    assert "${{ data.v }}" in out.error_text()
    assert expected in out.error_text()
    assert "$WFE_DATA" in out.error_text()


async def test_too_large_outputs_fail_the_step() -> None:
    compiled = one("""
        workflow:
          id: big
          steps:
            - name: a
              config:
                max_output_size: 1KiB
                run: 'head -c 5000 /dev/zero | tr "\\0" x | sed "s/^/big=/" >> "$WFE_OUTPUT"'
        """)
    out = await run(compiled)
    assert out.status != WorkflowStatus.COMPLETE
    assert "max_output_size" in out.error_text()


@pytest.mark.parametrize("key", ["file", "working_dir", "shell"])
def test_load_time_keys_refuse_data_expressions(key: str) -> None:
    value = {"file": "${{ data.script }}", "working_dir": "${{ data.dir }}"}.get(
        key, "${{ data.sh }}"
    )
    config = f"{{{key}: '{value}'" + ("" if key == "file" else ", run: echo") + "}"
    text = issues_text(
        validate(
            dedent(f"""
            workflow:
              id: load-time
              steps:
                - name: a
                  config: {config}
            """)
        )
    )
    assert "is not allowed here" in text
    assert f"config.{key}" in text


def test_var_expressions_still_work_in_load_time_keys(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    path = write(
        tmp_path / "wf.yaml",
        """
        workflow:
          id: var-ok
          steps:
            - name: a
              config: {working_dir: "${{ var.dir }}", shell: "${{ var.sh }}", run: echo}
        """,
    )
    assert validate(path, {"dir": "work", "sh": "bash"}) == []


def test_start_data_cannot_forge_step_records() -> None:
    compiled = one("""
        workflow:
          id: no-steps
          steps:
            - name: a
              config: {run: echo}
        """)
    with pytest.raises(Exception, match="reserved"):
        compiled.definition.data_validator({"steps": {"x": {"exports": ["path"]}}})  # type: ignore[misc]


async def test_an_output_cannot_shadow_an_inputs_environment_variable() -> None:
    compiled = one("""
        workflow:
          id: no-shadow
          inputs: {target: string}
          steps:
            - name: a
              config: {run: 'echo TARGET=prod >> "$WFE_OUTPUT"'}
            - name: b
              outputs: [seen]
              config: {run: 'echo "##wfe[output seen=$TARGET]"'}
        """)
    out = await run(compiled, {"target": "staging"})
    assert out.status != WorkflowStatus.COMPLETE
    assert "environment variable of the declared workflow input 'target'" in out.error_text()


async def test_the_private_files_are_this_users_only_and_removed_after_the_step() -> None:
    compiled = one("""
        workflow:
          id: private-files
          steps:
            - name: a
              outputs: [modes, dir]
              config:
                run: |
                  echo "modes=$(stat -c %a "$WFE_DATA" "$WFE_OUTPUT" "$(dirname "$WFE_DATA")" \
                    | tr '\\n' ' ')" >> "$WFE_OUTPUT"
                  echo "dir=$(dirname "$WFE_OUTPUT")" >> "$WFE_OUTPUT"
                  touch "$(dirname "$WFE_OUTPUT")/left-behind"
                  mkdir "$(dirname "$WFE_OUTPUT")/sub" && touch "$(dirname "$WFE_OUTPUT")/sub/f"
        """)
    out = await run(compiled, {})
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert out.data["modes"].split() == ["600", "600", "700"]
    # What the step left in its private directory goes with it.
    assert not await trio.Path(out.data["dir"]).exists()


async def test_a_script_scanned_once_still_gets_each_runs_own_values() -> None:
    compiled = one("""
        workflow:
          id: rescan
          steps:
            - name: a
              outputs: [said]
              config: {run: 'echo "said=${{ data.v }}" >> "$WFE_OUTPUT"'}
        """)
    first = await run(compiled, {"v": "one"})
    second = await run(compiled, {"v": "$(echo two); `echo three`"})
    assert first.status == second.status == WorkflowStatus.COMPLETE, (first.errors, second.errors)
    assert first.data["said"] == "one"
    assert second.data["said"] == "$(echo two); `echo three`"
