"""Where each ``${{ }}`` expression of a shell ``run:`` script stands, and whether a value
put there is guaranteed to stay data.

The scanner follows the POSIX shell grammar far enough to know, for every expression,
its quoting context: bare (also inside ``$( )`` and backticks), inside double quotes,
inside single quotes, in an unquoted heredoc body, or in a comment. It knows comments,
heredocs (quoted and unquoted, ``<<-``), ``case`` patterns and nested substitutions.

It fails closed. An expression gets a ``problem`` (and the loader refuses the file)
where quoting alone cannot keep a value from being read as code or choosing what runs:
arithmetic (``$(( ))``, ``(( ))``, ``$[ ]``, ``let``; bash evaluates ``a[$(cmd)]``
there), ``[[ ]]`` (its ``-eq`` operands are arithmetic), ``${...}`` parameter
expansions (array subscripts are arithmetic), quoted heredoc bodies (no expansion:
the value could not be inserted), a heredoc read by a shell, the command string of
``sh -c``/``bash -c`` and the like, the arguments of ``eval``, ``trap``, ``ssh``,
``watch`` and ``alias``, the command-name position, array subscripts in assignments,
assignments in a script that declares integer variables, ``$'...'`` strings, the
rest of a script after a construct shells disagree on, and any script run by an
interpreter that is not a POSIX shell.
"""

from __future__ import annotations

import re
from pathlib import PurePath

import attrs

from ._interpolation import EXPRESSION, is_runtime, parse_expression
from ._scanner_rules import (
    ASSIGNMENT,
    LIST_STARTERS,
    POSIX_SHELLS,
    RESERVED,
    Command,
    command_problem,
    process_substitution_problem,
    reads_code_from_stdin,
)

BARE, DOUBLE, SINGLE, HEREDOC, COMMENT = "bare", "double", "single", "heredoc", "comment"

_SUBSCRIPT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\[[^\]]*$")
_INTEGER_DECL = re.compile(r"(?:^|[\s;&|(])(?:declare|typeset|local|readonly|export)\s+-\w*i")
_OPERATORS = frozenset(";&|()<>")
_BLANKS = frozenset(" \t")

_ENV_HINT = (
    "pass the value as an environment variable instead (the step's `env:` key, "
    'e.g. `env: {VALUE: "${{ data.x }}"}`), and check it before such use, e.g. '
    "`case \"$VALUE\" in ''|*[!0-9]*) exit 1;; esac`"
)


@attrs.frozen(kw_only=True)
class Site:
    """One ``${{ data.* }}`` expression of a script: its span, context and, when a value
    there could become code, why (``problem``)."""

    start: int
    end: int
    text: str
    context: str
    problem: str | None

    def position(self, script: str) -> tuple[int, int]:
        """1-based line and column of the expression in ``script``."""
        line = script.count("\n", 0, self.start) + 1
        column = self.start - (script.rfind("\n", 0, self.start) + 1) + 1
        return line, column

    def describe(self, script: str) -> str:
        """A validation message for an unsafe site."""
        line, column = self.position(script)
        return (
            f"`{self.text}` at script line {line}, column {column}: {self.problem}; "
            f"a value there could run as code. {_ENV_HINT}"
        )


@attrs.define
class _Heredoc:
    delimiter: str
    strip_tabs: bool
    quoted: bool
    problem: str | None


class _Scanner:
    def __init__(self, script: str, shell: str | None) -> None:
        self.s = script
        self.n = len(script)
        self.i = 0
        self.sites: list[Site] = []
        self.pending: list[_Heredoc] = []
        self.uncertain: str | None = None
        self.integer_vars = _INTEGER_DECL.search(script) is not None
        name = PurePath(shell.split()[0]).name if shell and shell.split() else "sh"
        self.foreign = (
            None
            if name in POSIX_SHELLS
            else f"the step's shell `{name}` is not a POSIX shell whose quoting wfe knows"
        )

    # -- expressions ---------------------------------------------------------------

    def expression(self, context: str, problem: str | None) -> bool:
        """Record the ``${{ data.* }}`` expression at ``self.i``, if there is one."""
        if not self.s.startswith("${{", self.i):
            return False
        m = EXPRESSION.match(self.s, self.i)
        if m is None:
            return False
        parsed = parse_expression(m.group(1))
        if parsed is None or not is_runtime(parsed):
            self.i = m.end()  # var expressions and malformed ones are left as text
            return True
        if context != COMMENT:
            problem = self.foreign or problem or self.uncertain
        self.sites.append(
            Site(start=m.start(), end=m.end(), text=m.group(), context=context, problem=problem)
        )
        self.i = m.end()
        return True

    # -- quoting -------------------------------------------------------------------

    def single(self, problem: str | None) -> None:
        """After an opening ``'``: up to and including the closing one."""
        while self.i < self.n:
            if self.expression(SINGLE, problem):
                continue
            c = self.s[self.i]
            self.i += 1
            if c == "'":
                return

    def ansi(self, problem: str | None) -> None:
        """After ``$'``: bash's ANSI-C string; dash reads ``$`` and a plain '...'."""
        problem = problem or "inside a $'...' string"
        while self.i < self.n:
            if self.expression(SINGLE, problem):
                continue
            c = self.s[self.i]
            if c == "\\" and self.i + 1 < self.n:
                if self.s[self.i + 1] == "'":
                    self.uncertain = self.uncertain or (
                        "after a $'...\\'...' string, where sh and bash disagree on the quoting"
                    )
                self.i += 2
                continue
            self.i += 1
            if c == "'":
                return

    def double(self, problem: str | None) -> None:
        """After an opening ``"``: up to and including the closing one."""
        while self.i < self.n:
            if self.expression(DOUBLE, problem):
                continue
            c = self.s[self.i]
            if c == "\\":
                self.i += 2
            elif c == '"':
                self.i += 1
                return
            elif c == "$" or c == "`":
                self.dollar_or_backtick(problem)
            else:
                self.i += 1

    def dollar_or_backtick(self, problem: str | None) -> bool:
        """A substitution starting at ``self.i`` (``$(``, ``$((``, ``${``, ``$[``, a
        backtick); ``False`` when there is none."""
        s, i = self.s, self.i
        if s.startswith("$((", i):
            self.i = i + 3
            self.arithmetic("))", problem)
        elif s.startswith("$(", i):
            self.i = i + 2
            self.command(")", problem)
        elif s.startswith("${", i):
            self.i = i + 2
            self.braces(problem)
        elif s.startswith("$[", i):
            self.i = i + 2
            self.arithmetic("]", problem)
        elif s[i] == "`":
            self.i = i + 1
            self.command("`", problem)
        elif s[i] == "$":
            self.i = i + 2 if i + 1 < self.n and s[i + 1] not in "\n'\"" else i + 1
        else:
            return False
        return True

    def braces(self, problem: str | None) -> None:
        """After ``${``: a parameter expansion, up to its matching ``}``."""
        problem = problem or "inside a ${...} parameter expansion (subscripts are arithmetic)"
        while self.i < self.n:
            if self.expression(BARE, problem):
                continue
            c = self.s[self.i]
            if c == "}":
                self.i += 1
                return
            self.nested_char(c, problem)

    def arithmetic(self, close: str, problem: str | None) -> None:
        """After ``$((``, ``((`` or ``$[``: up to the matching ``close``."""
        problem = problem or "inside an arithmetic expression, where bash runs `a[$(cmd)]`"
        depth = 0
        while self.i < self.n:
            if self.expression(BARE, problem):
                continue
            if depth == 0 and self.s.startswith(close, self.i):
                self.i += len(close)
                return
            c = self.s[self.i]
            if c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
            if c in "()":
                self.i += 1
                continue
            self.nested_char(c, problem)

    def nested_char(self, c: str, problem: str | None) -> None:
        """One character (or quoted string, or substitution) inside ``${ }``/``$(( ))``."""
        if c == "\\":
            self.i += 2
        elif c == "'":
            self.i += 1
            self.single(problem)
        elif c == '"':
            self.i += 1
            self.double(problem)
        elif not ((c == "$" or c == "`") and self.dollar_or_backtick(problem)):
            self.i += 1

    # -- commands ------------------------------------------------------------------

    def command(self, term: str | None, inherited: str | None) -> None:
        """A command list up to ``term`` (``)``, a backtick, or the end for ``None``)."""
        cmd = Command()
        word: list[str] = []  # literal text of the current word
        literal = True
        started = False
        depth = 0
        cases: list[str] = []  # per open `case`: "word", "pattern" or "body"

        def finish_word() -> None:
            nonlocal word, literal, started
            if not started:
                return
            text = "".join(word) if literal else None
            word, literal, started = [], True, False
            if cmd.redirect_next:
                cmd.redirect_next = False
                return
            if cases and cases[-1] == "word" and text == "in":
                cases[-1] = "pattern"
                return
            if not cmd.words and not cmd.list_mode and text in RESERVED:
                return
            if text == "esac" and not cmd.words and cases:
                cases.pop()
                return
            if not cmd.words and text in LIST_STARTERS:
                cmd.list_mode = True
                if text == "case":
                    cases.append("word")
                return
            if not cmd.words and text == "[[":
                cmd.dbracket = True
            elif text == "]]":
                cmd.dbracket = False
            cmd.words.append(text)

        pipeline = [len(self.sites), -1]  # first site of the pipeline, of this command

        def new_command(pipe: bool = False) -> None:
            nonlocal cmd
            finish_word()
            if pipeline[1] >= 0 and reads_code_from_stdin(cmd.words):
                for k in range(pipeline[0], pipeline[1]):
                    if self.sites[k].context != COMMENT and self.sites[k].problem is None:
                        self.sites[k] = attrs.evolve(
                            self.sites[k], problem="piped into a shell, which runs it as code"
                        )
            cmd = Command()
            if pipe:
                pipeline[1] = len(self.sites)
            else:
                pipeline[0], pipeline[1] = len(self.sites), -1

        def word_problem() -> str | None:
            """Why a value in the current word could become code (``None``: it cannot)."""
            if inherited:
                return inherited
            if cmd.dbracket:
                return "inside [[ ]], whose -eq/-lt/... operands are arithmetic"
            if cases and cases[-1] in ("word", "pattern"):
                return None
            if cmd.redirect_next:
                return None
            text = "".join(word)
            if literal and _SUBSCRIPT.match(text):
                return "inside an array subscript, which is arithmetic"
            is_assignment = literal and ASSIGNMENT.match(text) is not None
            if is_assignment and self.integer_vars:
                return "in an assignment in a script that declares integer variables (-i)"
            return command_problem(cmd, is_assignment)

        while self.i < self.n:
            s, i = self.s, self.i
            c = s[i]
            if term == "`" and c == "`":
                new_command()
                self.i += 1
                return
            if self.expression(BARE, word_problem()):
                started, literal = True, False
                continue
            if c == "\\":
                if s.startswith("\\\n", i):
                    self.i += 2  # line continuation
                    continue
                started = True
                word.append(s[i + 1 : i + 2])
                self.i += 2
                continue
            if c == "'" or c == '"':
                problem = word_problem()
                self.i += 1
                started = True
                start = self.i
                (self.single if c == "'" else self.double)(problem)
                word.append(s[start : self.i - 1])
                if c == '"' and ("$" in word[-1] or "`" in word[-1]):
                    literal = False
                continue
            if c == "$" and s.startswith("$'", i):
                problem = word_problem()
                self.i += 2
                started, literal = True, False
                self.ansi(problem)
                continue
            if c == "$" or c == "`":
                problem = word_problem()
                started, literal = True, False
                self.dollar_or_backtick(problem)
                continue
            if c == "#" and not started:
                self.comment(term)
                continue
            if c in _BLANKS:
                finish_word()
                self.i += 1
                continue
            if c == "\n":
                new_command()
                self.i += 1
                self.heredoc_bodies()
                continue
            if c == "(" and not started and s.startswith("((", i):
                finish_word()
                self.i += 2
                self.arithmetic("))", inherited)
                continue
            if c in "<>" and s.startswith("(", i + 1):
                problem = word_problem() or process_substitution_problem(cmd)
                started, literal = True, False
                self.i += 2
                self.command(")", problem)
                continue
            if c in _OPERATORS:
                op = c
                for longer in ("<<-", "<<<", ";;&", ";;", ";&", "&&", "||", "<<", ">>", "<&"):
                    if s.startswith(longer, i):
                        op = longer
                        break
                else:
                    if s.startswith((">&", "<>", ">|"), i):
                        op = s[i : i + 2]
                if op[0] in "<>":
                    if started and literal and "".join(word).isdigit():
                        word, started = [], False  # an fd number (2>file)
                    finish_word()
                    self.i += len(op)
                    if op in ("<<", "<<-"):
                        self.heredoc_operator(op, cmd, inherited)
                    else:
                        cmd.redirect_next = True
                    continue
                if cases and op in (";;", ";&", ";;&"):
                    new_command()
                    cases[-1] = "pattern"
                    self.i += len(op)
                    continue
                if op == ")":
                    finish_word()  # an `esac` just before closes its case first
                    if cases and cases[-1] == "pattern" and depth == 0:
                        new_command()
                        cases[-1] = "body"
                        self.i += 1
                        continue
                    if depth == 0 and term == ")":
                        new_command()
                        self.i += 1
                        return
                    depth -= 1
                elif op == "(":
                    if cases and cases[-1] == "pattern" and not started:
                        self.i += 1  # the optional ( before a case pattern
                        continue
                    depth += 1
                elif op == "|" and cases and cases[-1] == "pattern":
                    finish_word()
                    self.i += 1
                    continue
                new_command(pipe=op == "|")
                self.i += len(op)
                continue
            started = True
            word.append(c)
            self.i += 1
        new_command()

    def comment(self, term: str | None) -> None:
        """From ``#`` to the end of the line (or a closing backtick)."""
        while self.i < self.n:
            if self.expression(COMMENT, None):
                continue
            c = self.s[self.i]
            if c == "\n" or (term == "`" and c == "`"):
                return
            self.i += 1

    # -- heredocs ------------------------------------------------------------------

    def heredoc_operator(self, op: str, cmd: Command, inherited: str | None) -> None:
        """After ``<<``/``<<-``: read the delimiter word and queue the body."""
        while self.i < self.n and self.s[self.i] in _BLANKS:
            self.i += 1
        delimiter: list[str] = []
        quoted = False
        problem = None
        while self.i < self.n:
            c = self.s[self.i]
            if c in _BLANKS or c == "\n" or c in _OPERATORS:
                break
            if self.s.startswith("${{", self.i):
                problem = "in a heredoc delimiter"
                self.expression(BARE, problem)
                delimiter.append("\0")
                continue
            if c == "\\":
                quoted = True
                delimiter.append(self.s[self.i + 1 : self.i + 2])
                self.i += 2
            elif c in "'\"":
                quoted = True
                end = self.s.find(c, self.i + 1)
                end = self.n if end < 0 else end
                delimiter.append(self.s[self.i + 1 : end])
                self.i = end + 1
            else:
                delimiter.append(c)
                self.i += 1
        reader = problem or inherited or command_problem(cmd, False, heredoc=True)
        self.pending.append(
            _Heredoc(
                delimiter="".join(delimiter),
                strip_tabs=op == "<<-",
                quoted=quoted,
                problem=reader,
            )
        )

    def heredoc_bodies(self) -> None:
        """At the start of the line after heredoc operators: each queued body."""
        pending, self.pending = self.pending, []
        for doc in pending:
            start = self.i
            end = body_end = self.n
            pos = start
            while pos < self.n:
                nl = self.s.find("\n", pos)
                line_end = self.n if nl < 0 else nl
                line = self.s[pos:line_end]
                if (line.lstrip("\t") if doc.strip_tabs else line) == doc.delimiter:
                    body_end = pos
                    end = line_end + 1 if nl >= 0 else self.n
                    break
                pos = line_end + 1
            self.heredoc_body(start, body_end, doc)
            self.i = min(end, self.n)

    def heredoc_body(self, start: int, end: int, doc: _Heredoc) -> None:
        saved_n = self.n
        self.i, self.n = start, end
        try:
            if doc.quoted:
                while self.i < self.n:
                    if not self.expression(
                        HEREDOC,
                        doc.problem
                        or "inside a quoted heredoc, whose body is never expanded (use an "
                        "unquoted heredoc, where the value is inserted as data)",
                    ):
                        self.i += 1
                return
            while self.i < self.n:
                if self.expression(HEREDOC, doc.problem):
                    continue
                c = self.s[self.i]
                if c == "\\":
                    self.i += 2
                elif not ((c == "$" or c == "`") and self.dollar_or_backtick(doc.problem)):
                    self.i += 1
        finally:
            self.n = saved_n


def scan(script: str, shell: str | None = None) -> list[Site]:
    """Every ``${{ data.* }}`` expression of ``script`` with its context; ``shell`` is the
    step's ``shell:`` (``None``: ``sh``)."""
    scanner = _Scanner(script, shell)
    scanner.command(None, None)
    return scanner.sites


def problems(script: str, shell: str | None = None) -> list[Site]:
    """The sites of ``script`` where a value could become code."""
    return [site for site in scan(script, shell) if site.problem is not None]
