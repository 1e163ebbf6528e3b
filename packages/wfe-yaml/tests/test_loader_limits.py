"""Loader limits: alias bombs fail fast, tags are refused everywhere, and include reads
only regular files of bounded size without quoting what a foreign file holds."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from wfe.yaml import YamlWorkflowError, load_workflow, validate

STEPS = "workflow: {id: x, steps: [{name: a, config: {run: echo}}]}\n"


def bomb(levels: int = 9) -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    previous = "a"
    for name in "bcdefghijklmnop"[: levels - 1]:
        lines.append(f"{name}: &{name} [{','.join(['*' + previous] * 9)}]")
        previous = name
    return "\n".join(lines) + "\n" + STEPS


def test_an_alias_bomb_fails_fast_with_a_positioned_error() -> None:
    # Twelve levels of nine: expanded, it would be 9**12 (about 3e11) strings, hours of
    # work and far more memory than the machine has; refused, it takes milliseconds. The
    # bound is a guard against a hang on a loaded machine, not a timing measurement.
    text = bomb(levels=12)
    assert len(text) < 1000
    started = time.monotonic()
    issues = validate(text)
    assert time.monotonic() - started < 30.0
    assert len(issues) == 1
    assert "aliases" in issues[0].message
    assert issues[0].line >= 1


def test_merge_keys_and_modest_aliases_still_work() -> None:
    text = (
        "workflow: {id: x, steps: [&s {name: a, config: &c {run: echo hi}},\n"
        "  {<<: *s, name: b}, {name: c, config: *c}]}\n"
    )
    assert validate(text) == []


@pytest.mark.parametrize(
    "tagged",
    [
        "workflow: !custom {id: x, steps: [{name: a, config: {run: echo}}]}",
        "workflow: {id: x, steps: !!seq [{name: a, config: {run: echo}}]}",
        "workflow: {id: !!str x, steps: [{name: a, config: {run: echo}}]}",
        "workflow: {id: x, steps: [{name: a, config: !!map {run: echo}}]}",
    ],
)
def test_tags_are_refused_on_mappings_sequences_and_scalars(tagged: str) -> None:
    issues = validate(tagged + "\n")
    assert issues
    assert all("tags are not supported" in i.message for i in issues)


def test_include_of_a_foreign_file_never_quotes_it(tmp_path: Path) -> None:
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$SECRETHASH:19000:0:99999:7:::\nbin: [SECRET2\n")
    issues = validate(f"include: [{secret}]\n{STEPS}")
    text = "\n".join(str(i) for i in issues)
    assert "not a wfe workflow file" in text
    assert "SECRET" not in text


@pytest.mark.parametrize("kind", ["fifo", "device", "directory", "large"])
def test_include_refuses_what_is_not_a_small_regular_file(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "target"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "device":
        target = Path("/dev/zero")
    elif kind == "directory":
        target.mkdir()
    else:
        target.write_bytes(b"# " + b"x" * (5 * 1024 * 1024) + b"\n")
    started = time.monotonic()
    issues = validate(f"include: [{target}]\n{STEPS}")
    # A fifo or /dev/zero read to the end would never return: a guard, not a timing.
    assert time.monotonic() - started < 30.0
    assert len(issues) == 1
    assert "cannot read included file" in issues[0].message
    assert issues[0].key == "include[0]"


def test_a_device_given_as_the_workflow_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(YamlWorkflowError, match="not a regular file"):
        load_workflow("/dev/zero")
