"""The one error type of wfe.yaml, carrying every problem found with its position."""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from wfe.core import WfeError


@attrs.frozen(kw_only=True)
class Issue:
    """One problem in a YAML workflow: where (``file:line:column``), which key, what is wrong.

    ``line`` and ``column`` are 1-based; ``key`` is the dotted path of the offending
    key (``workflow.steps[2].config.timeout``).
    """

    file: str
    line: int
    column: int
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.key}: {self.message}"


class YamlWorkflowError(WfeError):
    """A YAML workflow (or the data given to it) is invalid; ``issues`` lists every problem.

    ``str()`` lists the issues one per line as ``file:line:col: key: message``.
    """

    def __init__(self, issues: Iterable[Issue]) -> None:
        self.issues: list[Issue] = sorted(
            issues, key=lambda i: (i.file, i.line, i.column, i.key, i.message)
        )
        if not self.issues:
            raise ValueError("YamlWorkflowError needs at least one issue")
        super().__init__("\n".join(str(i) for i in self.issues))
