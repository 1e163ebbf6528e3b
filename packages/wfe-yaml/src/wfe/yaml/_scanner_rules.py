"""What the run: scanner knows about commands: which ones parse their arguments (or
their input) as code, and where a word is a command name, an assignment or a shell's
command string."""

from __future__ import annotations

import re
from pathlib import PurePath

import attrs

#: Interpreters whose quoting the scanner knows (the first word of ``shell:``).
POSIX_SHELLS = frozenset({"sh", "bash", "dash", "ash", "ksh", "mksh", "zsh", "busybox"})
# Programs whose -c option runs its next argument as a shell script.
_DASH_C = POSIX_SHELLS | {"fish", "csh", "tcsh", "su", "runuser", "flock", "script"}
# Commands that parse their arguments as shell code (or arithmetic).
_REPARSE = {
    "eval": "`eval` runs its arguments as shell code",
    "let": "`let` evaluates its arguments as arithmetic, where bash runs `a[$(cmd)]`",
    "trap": "`trap` runs its argument as shell code",
    "alias": "an alias is shell code",
    "ssh": "ssh passes its command to the remote shell, which parses it again",
    "watch": "watch passes its command to `sh -c`",
}
# Words that only prefix the command that really runs.
_WRAPPERS = frozenset(
    {"sudo", "doas", "env", "command", "builtin", "exec", "nohup", "nice", "time", "timeout"}
    | {"stdbuf", "setsid", "xargs", "ionice", "chrt", "taskset"}
)
RESERVED = frozenset(
    {"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "{", "}", "!"}
    | {"function", "time"}
)
LIST_STARTERS = frozenset({"for", "select", "case"})
ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\+?=")


@attrs.define
class Command:
    """The simple command being read: its completed words (``None``: not literal)."""

    words: list[str | None] = attrs.field(factory=list)
    list_mode: bool = False  # for/select/case: the words are not commands
    redirect_next: bool = False
    dbracket: bool = False


def command_problem(cmd: Command, is_assignment: bool, *, heredoc: bool = False) -> str | None:
    """Why a value in the next word of ``cmd`` (or in a heredoc it reads) could run."""
    words = cmd.words
    index = len(words)
    k = 0
    while k < index and words[k] is not None and ASSIGNMENT.match(words[k] or ""):
        k += 1
    if heredoc:
        pass
    elif k == index:
        if is_assignment or cmd.list_mode:
            return None
        return "in the command-name position, where the value would choose the program to run"
    j = k
    while j < index and words[j] in _WRAPPERS:
        j += 1
        while j < index and (
            (words[j] or "").startswith("-")
            or ASSIGNMENT.match(words[j] or "")
            or (words[j] or "")[:1].isdigit()
        ):
            j += 1
    if j == index and not heredoc and j > k:
        return "in the command-name position, where the value would choose the program to run"
    if j < index and words[j] is None:
        return (
            "in the arguments of a command chosen at run time ($VAR ...), which may parse "
            "them as code"
        )
    effective = words[j] if j < index else None
    name = PurePath(effective).name if effective else None
    if name in _REPARSE:
        return _REPARSE[name]
    for pos, w in enumerate(words):
        base = PurePath(w).name if w else ""
        if heredoc:
            if base in POSIX_SHELLS:
                return "in a heredoc read by a shell, which runs it as code"
            continue
        if base in _DASH_C and _dash_c_script(words, pos) == index:
            return f"in the command string of `{w} -c`, which is parsed again as shell code"
    return None


def process_substitution_problem(cmd: Command) -> str | None:
    """Why the output of a ``<(...)`` in the next word of ``cmd`` could run as code."""
    words = cmd.words
    if any(w is not None and PurePath(w).name in ("source", ".") for w in words[:1]):
        return "in a process substitution that is sourced as shell code"
    if any(w is not None and PurePath(w).name in POSIX_SHELLS for w in words):
        return "in a process substitution that a shell runs as its script"
    return None


def reads_code_from_stdin(words: list[str | None]) -> bool:
    """Whether the simple command ``words`` is a shell reading its script from stdin."""
    for pos, w in enumerate(words):
        if w is not None and PurePath(w).name in ("source", ".") and pos == 0:
            return any(x in ("/dev/stdin", "/proc/self/fd/0", "-") for x in words[1:])
        if w is None or PurePath(w).name not in POSIX_SHELLS:
            continue
        return _shell_reads_stdin(words, pos + 1)
    return False


def _shell_reads_stdin(words: list[str | None], k: int) -> bool:
    """Whether a shell whose options start at ``words[k]`` reads its script from stdin
    (no ``-c``, no script file, or ``-s``)."""
    while k < len(words):
        w = words[k]
        if w is None:
            return False
        if w == "-":
            return True
        if w == "--":
            return k + 1 >= len(words)
        if not w.startswith(("-", "+")):
            return False  # a script file
        if w in ("-o", "+o", "-O", "+O"):
            k += 2
            continue
        if not w.startswith("--") and "c" in w[1:]:
            return False
        if not w.startswith("--") and "s" in w[1:]:
            return True
        k += 1
    return True


def _dash_c_script(words: list[str | None], shell_at: int) -> int | None:
    """Index of the word ``-c`` runs after ``words[shell_at]`` (len(words) if not yet
    read), or ``None`` when that command has no ``-c``."""
    seen_c = False
    k = shell_at + 1
    while k < len(words):
        w = words[k]
        if w is None or not w.startswith("-") or w == "-":
            return k if seen_c else None
        if w == "--":
            return k + 1 if seen_c else None
        if not w.startswith("--") and "c" in w[1:]:
            seen_c = True
        if w in ("-o", "+o", "-O", "+O"):
            k += 1
        k += 1
    return k if seen_c else None
