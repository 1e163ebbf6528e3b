"""Acceptance tests for DESIGN.md §7 (YAML workflows).

Conditions, error handling, parallel steps and durations.

Black-box: only the public names written in DESIGN.md §7 (``load_workflow``,
``load_workflow_from_str``, ``validate``, ``CompiledWorkflow.definition``) plus the
host of §5 are used, and behaviour is observed through workflow status, data,
recorded errors and files on disk.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from wfe.core import WfeError, WorkflowStatus
from wfe.yaml import (
    load_workflow_from_str,
)

# The helpers live in a sibling module so that they are importable by name
# (pytest's importlib mode does not put tests/ on sys.path).
sys.path.insert(0, str(Path(__file__).parent))
from yaml_acceptance_support import listing, one, run

# ----------------------------------------------------------------- conditions


CONDITIONS: list[tuple[str, bool]] = [
    ("{field: .inputs.env, equals: prod}", True),
    ("{field: .inputs.env, equals: dev}", False),
    ("{field: .inputs.env, not_equals: dev}", True),
    ("{field: .inputs.env, not_equals: prod}", False),
    ("{field: .inputs.n, gt: 4}", True),
    ("{field: .inputs.n, gt: 5}", False),
    ("{field: .inputs.n, gte: 5}", True),
    ("{field: .inputs.n, gte: 6}", False),
    ("{field: .inputs.n, lt: 6}", True),
    ("{field: .inputs.n, lt: 5}", False),
    ("{field: .inputs.n, lte: 5}", True),
    ("{field: .inputs.n, lte: 4}", False),
    ("{field: .inputs.tag, contains: rc}", True),
    ("{field: .inputs.tag, contains: beta}", False),
    ("{field: .inputs.tags, contains: blue}", True),
    ("{field: .inputs.tags, contains: green}", False),
    ("{field: .inputs.nothing, is_null: true}", True),
    ("{field: .inputs.env, is_null: true}", False),
    ("{field: .inputs.env, is_not_null: true}", True),
    ("{field: .inputs.absent, is_not_null: true}", False),
    ("{field: .outputs.made, equals: 3}", True),
    ("{field: .outputs.made, gt: 3}", False),
    ("{all: [{field: .inputs.env, equals: prod}, {field: .inputs.n, equals: 5}]}", True),
    ("{all: [{field: .inputs.env, equals: prod}, {field: .inputs.n, equals: 6}]}", False),
    ("{any: [{field: .inputs.env, equals: dev}, {field: .inputs.n, equals: 5}]}", True),
    ("{any: [{field: .inputs.env, equals: dev}, {field: .inputs.n, equals: 6}]}", False),
    ("{none: [{field: .inputs.env, equals: dev}, {field: .inputs.n, equals: 6}]}", True),
    ("{none: [{field: .inputs.env, equals: prod}, {field: .inputs.n, equals: 6}]}", False),
    ("{one_of: [{field: .inputs.env, equals: prod}, {field: .inputs.n, equals: 6}]}", True),
    ("{one_of: [{field: .inputs.env, equals: prod}, {field: .inputs.n, equals: 5}]}", False),
    ("{not: {field: .inputs.env, equals: dev}}", True),
    ("{not: {field: .inputs.env, equals: prod}}", False),
]


async def test_when_comparisons_and_combinators() -> None:
    """Each `when` decides whether its step runs; a skipped step sets nothing."""
    steps = ["    - name: producer", "      config: {run: 'echo \"##wfe[output made=3]\"'}"]
    for index, (condition, _) in enumerate(CONDITIONS):
        steps += [
            f"    - name: c{index}",
            f"      when: {condition}",
            f"      config: {{run: 'echo \"##wfe[output ran{index}=true]\"'}}",
        ]
    text = "workflow:\n  id: conditions\n  steps:\n" + "\n".join(steps) + "\n"
    compiled = load_workflow_from_str(text, {})[0]
    data = {"env": "prod", "n": 5, "tag": "v1-rc2", "tags": ["red", "blue"], "nothing": None}
    out = await run(compiled, data)
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    wrong = [
        (condition, expected)
        for index, (condition, expected) in enumerate(CONDITIONS)
        if (out.data.get(f"ran{index}") is True) != expected
    ]
    assert wrong == []


def test_when_with_unknown_operator_is_a_validation_error() -> None:
    with pytest.raises(WfeError, match="bigger"):
        one("""
            workflow:
              id: badwhen
              steps:
                - name: a
                  when: {field: .inputs.x, bigger: 3}
                  config: {run: "true"}
            """)


# -------------------------------------------------------------- error handling


async def test_default_error_behavior_suspends(tmp_path: Path) -> None:
    compiled = one(f"""
        workflow:
          id: suspends
          steps:
            - name: boom
              config: {{run: "exit 1"}}
            - name: after
              config: {{run: "touch {tmp_path}/after"}}
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.SUSPENDED
    assert not (tmp_path / "after").exists()


async def test_error_behavior_terminate() -> None:
    compiled = one("""
        workflow:
          id: terminates
          error_behavior: {type: terminate}
          steps:
            - name: boom
              config: {run: "exit 1"}
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.TERMINATED


async def test_step_error_behavior_overrides_workflow() -> None:
    compiled = one("""
        workflow:
          id: step-override
          error_behavior: {type: suspend}
          steps:
            - name: boom
              error_behavior: {type: terminate}
              config: {run: "exit 1"}
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.TERMINATED


async def test_error_behavior_retry_with_interval_and_max_retries(tmp_path: Path) -> None:
    """retry: the step is re-run after `interval`; it succeeds on the third attempt."""
    counter = tmp_path / "count"
    compiled = one(f"""
        workflow:
          id: retries
          steps:
            - name: flaky
              error_behavior: {{type: retry, interval: 200ms, max_retries: 3}}
              config:
                run: |
                  echo x >> {counter}
                  test "$(wc -l < {counter})" -ge 3
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert counter.read_text().count("x") == 3


async def test_retry_exhaustion_suspends_after_n_plus_one_attempts(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    compiled = one(f"""
        workflow:
          id: exhausted
          error_behavior: {{type: retry, interval: 100ms, max_retries: 2}}
          steps:
            - name: always
              config: {{run: "echo x >> {counter}; exit 1"}}
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.SUSPENDED
    assert counter.read_text().count("x") == 3


async def test_error_behavior_compensate_stops_the_workflow(tmp_path: Path) -> None:
    compiled = one(f"""
        workflow:
          id: compensates
          error_behavior: {{type: compensate}}
          steps:
            - name: boom
              config: {{run: "exit 1"}}
            - name: after
              config: {{run: "touch {tmp_path}/after"}}
        """)
    out = await run(compiled)
    assert out.status != WorkflowStatus.RUNNABLE
    assert not (tmp_path / "after").exists()


def test_error_behavior_unknown_type_is_a_validation_error() -> None:
    with pytest.raises(WfeError, match="explode"):
        one("""
            workflow:
              id: badeb
              error_behavior: {type: explode}
              steps: [{name: a, config: {run: "true"}}]
            """)


async def test_hooks_after_success(tmp_path: Path) -> None:
    compiled = one(f"""
        workflow:
          id: hooks-ok
          steps:
            - name: main
              config: {{run: "touch {tmp_path}/main"}}
              on_success:
                - name: ok
                  config: {{run: "touch {tmp_path}/ok"}}
              on_failure:
                - name: failed
                  config: {{run: "touch {tmp_path}/failed"}}
              ensure:
                - name: always
                  config: {{run: "touch {tmp_path}/always"}}
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert listing(tmp_path) == ["always", "main", "ok"]


async def test_hooks_after_failure(tmp_path: Path) -> None:
    compiled = one(f"""
        workflow:
          id: hooks-fail
          steps:
            - name: main
              config: {{run: "exit 4"}}
              on_success:
                - name: ok
                  config: {{run: "touch {tmp_path}/ok"}}
              on_failure:
                - name: failed
                  config: {{run: "touch {tmp_path}/failed"}}
              ensure:
                - name: always
                  config: {{run: "touch {tmp_path}/always"}}
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.SUSPENDED
    assert listing(tmp_path) == ["always", "failed"]


def test_step_names_must_be_unique() -> None:
    with pytest.raises(WfeError, match="twice"):
        one("""
            workflow:
              id: dupe
              steps:
                - name: twice
                  config: {run: "true"}
                - name: twice
                  config: {run: "true"}
            """)


# ---------------------------------------------------------- parallel, durations


async def test_parallel_steps_run_concurrently(tmp_path: Path) -> None:
    # Each branch marks itself started and waits until all three have: one after
    # another, the first would wait in vain and fail. No timing is assumed.
    d = tmp_path
    wait = (
        f"for i in $(seq 200); do [ -e {d}/one ] && [ -e {d}/two ] && [ -e {d}/three ] "
        f"&& break; sleep 0.05; done; [ -e {d}/one ] && [ -e {d}/two ] && [ -e {d}/three ]"
    )
    compiled = one(f"""
        workflow:
          id: par
          steps:
            - name: group
              parallel:
                - name: one
                  outputs: [one]
                  config: {{run: 'touch {d}/one; {wait}; echo "##wfe[output one=1]"'}}
                - name: two
                  outputs: [two]
                  config: {{run: 'touch {d}/two; {wait}; echo "##wfe[output two=2]"'}}
                - name: three
                  outputs: [three]
                  config: {{run: 'touch {d}/three; {wait}; echo "##wfe[output three=3]"'}}
            - name: after
              config: {{run: 'echo "##wfe[output total=$((ONE + TWO + THREE))]"'}}
        """)
    out = await run(compiled)
    assert out.status == WorkflowStatus.COMPLETE, out.errors
    assert (out.data["one"], out.data["two"], out.data["three"]) == (1, 2, 3)
    assert out.data["total"] == 6


@pytest.mark.parametrize("duration", ["500ms", "30s", "5m", "1h30m"])
def test_durations_are_accepted(duration: str) -> None:
    compiled = one(f"""
        workflow:
          id: dur
          error_behavior: {{type: retry, interval: {duration}, max_retries: 1}}
          steps:
            - name: a
              config: {{run: "true", timeout: "{duration}"}}
        """)
    assert compiled.definition.id == "dur"


@pytest.mark.parametrize("duration", ["5 minutes", "abc", "-1s"])
def test_bad_durations_are_validation_errors(duration: str) -> None:
    with pytest.raises(WfeError, match="timeout"):
        one(f"""
            workflow:
              id: dur
              steps:
                - name: a
                  config: {{run: "true", timeout: "{duration}"}}
            """)
