"""`${{ data.path }}` at run time, and values that cannot change a shell command's syntax."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wfe.yaml import InterpolationError, render, render_shell, render_value
from wfe.yaml._interpolation import parse_expression

DATA = {
    "name": "bob",
    "n": 3,
    "items": [{"id": "a"}, {"id": "b"}],
    "steps": {"Run tests": {"x": 1}},
}


def test_expressions_parse() -> None:
    assert parse_expression(" var.branch ") == ("var", ("branch",))
    assert parse_expression("data.items[1].id") == ("data", ("items", 1, "id"))
    assert parse_expression("data.items.0") == ("data", ("items", 0))
    assert parse_expression('data.steps["Run tests"].x') == ("data", ("steps", "Run tests", "x"))
    assert parse_expression("env.HOME") is None
    assert parse_expression("var.a.b") is None
    assert parse_expression("data") is None
    assert parse_expression("data.a b") is None


def test_render_inserts_values_as_text() -> None:
    assert render("hi ${{ data.name }} x${{data.n}}", DATA) == "hi bob x3"
    assert render("${{ data.items[1].id }}", DATA) == "b"
    assert render('${{ data.steps["Run tests"] }}', DATA) == '{"x": 1}'


def test_render_value_keeps_the_type_of_a_lone_expression() -> None:
    assert render_value(
        {"a": "${{ data.n }}", "b": ["${{ data.items }}", "n=${{ data.n }}"]}, DATA
    ) == {
        "a": 3,
        "b": [DATA["items"], "n=3"],
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${{ data.nope }}", "data.nope"),
        ("${{ data.items[5] }}", "out of range"),
        ("${{ data.name.first }}", "not a map or list"),
    ],
)
def test_unresolved_data_names_the_path(text: str, message: str) -> None:
    with pytest.raises(InterpolationError, match=message):
        render(text, DATA)


INJECTIONS = [
    "$(touch pwned)",
    "`touch pwned`",
    '"; touch pwned; "',
    "'; touch pwned; '",
    "x\ntouch pwned",
    "$((1+1)) && touch pwned",
    "a b  c *",
    "\\",
    "${IFS}touch${IFS}pwned",
    "-n",
]

TEMPLATES = [
    "printf '%s' ${{ data.v }}",
    "printf '%s' \"${{ data.v }}\"",
    "printf '%s' '${{ data.v }}'",
    "printf '%s' \"pre ${{ data.v }} post\"",
    "printf '%s' \"$(printf '%s' ${{ data.v }})\"",
    "printf '%s' \"`printf '%s' \"${{ data.v }}\"`\"",
    "printf '%s' x${{ data.v }}y",
]


def run_shell(shell: str, template: str, value: Any, cwd: Path) -> str:
    script, env = render_shell(template, {"v": value})
    proc = subprocess.run(
        [shell, "-c", script],
        env={"PATH": "/usr/bin:/bin", **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout


@pytest.mark.parametrize("shell", ["sh", "bash"])
@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("value", INJECTIONS)
def test_injection_attempts_stay_data(
    shell: str, template: str, value: str, tmp_path: Path
) -> None:
    out = run_shell(shell, template, value, tmp_path)
    assert not (tmp_path / "pwned").exists()
    assert value in out


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\0")))
def test_any_value_reaches_the_command_intact(value: str) -> None:
    script, env = render_shell("printf '%s' \"${{ data.v }}\"", {"v": value})
    proc = subprocess.run(
        ["sh", "-c", script], env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, check=True
    )
    assert proc.stdout.decode("utf-8", "surrogateescape") == value


def test_shell_rewrite_leaves_other_text_alone() -> None:
    script, env = render_shell("echo \"$HOME\" '${{ data.v }}' ${{ var.x }}", {"v": 1})
    assert script == "echo \"$HOME\" ''\"${__WFE_EXPR_1}\"'' ${{ var.x }}"
    assert env == {"__WFE_EXPR_1": "1"}
