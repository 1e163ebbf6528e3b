"""The run: scanner knows comments, heredocs and case, and fails closed; real `sh` and
`bash` are the oracle: every value arrives byte-exact, or the loader refuses."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wfe.yaml import InterpolationError, render_shell, validate
from wfe.yaml._scanner import problems, scan

E = "${{ data.v }}"


@pytest.mark.parametrize(
    "script",
    [
        f'echo "it\'s" # don\'t "\nprintf %s {E}',
        f'cat <<EOF\nit\'s "here"\nEOF\nprintf %s {E}',
        f"cat <<'EOF'\nit's \"here\" $(x)\nEOF\nprintf %s {E}",
        f"cat <<-EOF\n\tit's\n\tEOF\nprintf %s {E}",
        f"x=$(case $y in a) echo it;; esac); printf %s {E}",
        f"bash -c 'printf %s \"$1\"' _ {E}",
        f"X={E} env",
        f'for i in {E}; do echo "$i"; done',
        f"case {E} in *) echo;; esac",
        f"echo > {E}",
        f"printf %s {E} | sh script.sh",
        f"diff <(printf %s {E}) f",
        f"echo {E}; sh",
    ],
)
def test_safe_contexts_are_accepted(script: str) -> None:
    assert problems(script) == []
    assert scan(script)[-1].context != "comment"


@pytest.mark.parametrize(
    ("script", "why"),
    [
        (f"echo $(( {E} + 1 ))", "arithmetic"),
        (f"(( n = {E} ))", "arithmetic"),
        (f"let n={E}", "let"),
        (f"[[ {E} -eq 1 ]]", "[[ ]]"),
        (f'eval "echo {E}"', "eval"),
        (f'sh -c "echo {E}"', "sh -c"),
        (f"find . -exec bash -c 'rm {E}' \\;", "bash -c"),
        (f"sh <<EOF\n{E}\nEOF", "heredoc read by a shell"),
        (f"cat <<'EOF'\n{E}\nEOF", "quoted heredoc"),
        (f"{E} --help", "command-name"),
        (f"a[{E}]=1", "subscript"),
        (f"echo ${{x:-{E}}}", "parameter expansion"),
        (f"declare -i n; n={E}", "integer"),
        (f"trap 'echo {E}' EXIT", "trap"),
        (f"printf '%s' {E} | grep . | sh", "piped into a shell"),
        (f"x=$(echo {E} | bash -s)", "piped into a shell"),
        (f'$SHELL -c "echo {E}"', "chosen at run time"),
        (f"sudo {E}", "command-name"),
        (f"source <(echo {E})", "sourced"),
        (f"bash <(echo {E})", "a shell runs"),
    ],
)
def test_unsafe_contexts_are_refused(script: str, why: str) -> None:
    found = problems(script, "bash")
    assert found, script
    assert why in (found[0].problem or "")


def test_refusal_names_the_position_and_the_environment_variable_way() -> None:
    issues = validate(
        "workflow:\n  id: x\n  steps:\n    - name: a\n      config:\n        run: |\n"
        "          echo ok\n          echo $(( ${{ data.n }} + 1 ))\n"
    )
    assert len(issues) == 1
    message = issues[0].message
    assert issues[0].key == "workflow.steps[0].config.run"
    assert "script line 2, column 10" in message
    assert "arithmetic" in message
    assert "env:" in message


def test_a_script_run_by_an_unknown_interpreter_takes_no_data_expressions() -> None:
    issues = validate(
        "workflow:\n  id: x\n  steps:\n    - name: a\n"
        "      config: {shell: python3, run: 'print(${{ data.v }})'}\n"
    )
    assert issues
    assert "not a POSIX shell" in issues[0].message


def test_render_shell_refuses_unsafe_contexts_at_run_time() -> None:
    with pytest.raises(InterpolationError, match="arithmetic"):
        render_shell(f"echo $(( {E} ))", {"v": "1"})


def test_expressions_in_comments_are_left_alone() -> None:
    script, env = render_shell(f"echo hi # {E} ${{{{ data.missing }}}}", {"v": "x"})
    assert script == f"echo hi # {E} ${{{{ data.missing }}}}"
    assert env == {}


# -- the oracle ------------------------------------------------------------------------

# (template, expected output from value v) — {e} is the expression, {o} the output file.
SAFE = [
    ("printf '%s' {e} > {o}", lambda v: v),
    ("printf '%s' \"{e}\" > {o}", lambda v: v),
    ("printf '%s' 'q{e}q' > {o}", lambda v: f"q{v}q"),
    ("printf '%s' \"a{e}b\" > {o}", lambda v: f"a{v}b"),
    ("printf '%s' \"$(printf '%s' {e})\" > {o}", lambda v: v.rstrip("\n")),
    ("x=`printf '%s' {e}`; printf '%s' \"$x\" > {o}", lambda v: v.rstrip("\n")),
    ('cat > {o} <<EOF\nit\'s {e} "x"\nEOF', lambda v: f'it\'s {v} "x"\n'),
    ("case {e} in *) printf '%s' {e} > {o};; esac", lambda v: v),
    ("X={e}; printf '%s' \"$X\" > {o}", lambda v: v),
]
NOISE = [
    "# it's a \"comment` $(",
    "cat > /dev/null <<'Q'\nit's \"quoted\" $(nope) `x`\nQ",
    "cat > /dev/null <<Q\nit's \"x\nQ",
    ': "it\'s"',
    ": 'say \"hi\"'",
    'y=$(case a in a) echo "\'";; esac)',
]
UNSAFE = [
    "echo $(( {e} )) > {o}",
    "[[ {e} == x ]] && : > {o}",
    "eval \"printf '%s' {e}\" > {o}",
    "sh -c \"printf '%s' {e}\" > {o}",
    "cat > {o} <<'EOF'\n{e}\nEOF",
    "{e} > {o}",
    "let x={e}",
    "printf '%s' {e} | sh > {o}",
    "$SHELL -c \"printf '%s' {e}\" > {o}",
]
PAYLOADS = [
    "$(touch {p})",
    "`touch {p}`",
    "a[$(touch {p})]",
    "'; touch {p}; '",
    '"; touch {p}; "',
    "x\ntouch {p}\nEOF\ntouch {p}",
    "*",
    "-exec",
    "$((1+1))",
    "\\",
    "${{IFS}}",
]
values = st.one_of(
    st.sampled_from(PAYLOADS),
    st.text(
        alphabet=st.sampled_from(list("ab '\"$`\\;|&()<>*?[]{}~#!\n\tEOF=-")) | st.characters(),
        max_size=12,
    ).filter(lambda t: "\0" not in t and not any(0xD800 <= ord(c) <= 0xDFFF for c in t)),
)
pieces = st.lists(
    st.one_of(
        st.tuples(st.just("safe"), st.integers(0, len(SAFE) - 1), values),
        st.tuples(st.just("noise"), st.integers(0, len(NOISE) - 1), st.just("")),
        st.tuples(st.just("unsafe"), st.integers(0, len(UNSAFE) - 1), values),
    ),
    min_size=1,
    max_size=5,
)


@pytest.mark.parametrize("shell", ["sh", "bash"])
@settings(max_examples=40, deadline=None)
@given(plan=pieces)
def test_every_value_arrives_byte_exact_or_the_loader_refuses(
    shell: str, plan: list[tuple[str, int, str]]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = Path(tmp)
        pwned = out_dir / "pwned"
        lines, data, expected = [], {}, {}
        for n, (kind, index, raw) in enumerate(plan):
            value = raw.replace("{p}", str(pwned))
            expr = f"${{{{ data.v{n} }}}}"
            target = f'"$OUT/{n}"'
            if kind == "noise":
                lines.append(NOISE[index])
                continue
            data[f"v{n}"] = value
            if kind == "safe":
                template, expect = SAFE[index]
                expected[n] = expect(value)
            else:
                template = UNSAFE[index]
            lines.append(template.format(e=expr, o=target))
        script = "\n".join(lines) + "\n"
        refused = problems(script, shell)
        if any(kind == "unsafe" for kind, _, _ in plan):
            assert refused, script
            return
        assert refused == [], (script, refused)
        rendered, env = render_shell(script, data, shell=shell)
        proc = subprocess.run(
            [shell, "-c", rendered],
            env={"PATH": os.environ["PATH"], "OUT": str(out_dir), **env},
            cwd=out_dir,
            capture_output=True,
            check=False,
        )
        assert proc.returncode == 0, (script, proc.stderr)
        for n, want in expected.items():
            got = (out_dir / str(n)).read_bytes().decode("utf-8", "surrogateescape")
            assert got == want, (script, n)
        assert not pwned.exists(), script
