"""Parsed YAML as a tree of :class:`YamlNode`: plain values that remember where they came from.

ruamel.yaml's round-trip mode keeps positions (0-based) on its containers; this module
turns its output into nodes with 1-based ``line``/``column`` and a dotted ``path``, so
every later check can name ``file:line:column`` and the key. Anything YAML can say that
a workflow cannot use (tags, sets, binary, recursive aliases, non-string keys) becomes
an :class:`Issue` here.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import attrs
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import NodeEvent

from ._errors import Issue


@attrs.define(eq=False)
class YamlNode:
    """A value from a YAML file with its position.

    ``value`` is a ``dict[str, YamlNode]`` (mapping), a ``list[YamlNode]`` (sequence)
    or a scalar (``str``, ``int``, ``float``, ``bool``, ``None``, ``datetime``).
    ``line``/``column`` (1-based) locate the value, ``key_line``/``key_column`` the key
    that holds it; ``path`` is its dotted key path (``workflow.steps[0].config``).
    """

    value: Any
    file: str
    line: int
    column: int
    path: str
    key_line: int = 0
    key_column: int = 0

    @property
    def is_map(self) -> bool:
        return isinstance(self.value, dict)

    @property
    def is_seq(self) -> bool:
        return isinstance(self.value, list)

    @property
    def is_scalar(self) -> bool:
        return not isinstance(self.value, dict | list)

    def get(self, key: str) -> YamlNode | None:
        """The child under ``key`` of a mapping node (``None`` if absent or not a mapping)."""
        if isinstance(self.value, dict):
            child: YamlNode | None = self.value.get(key)
            return child
        return None

    def items(self) -> Iterator[tuple[str, YamlNode]]:
        """The entries of a mapping node (nothing for other nodes)."""
        if isinstance(self.value, dict):
            yield from self.value.items()

    def plain(self) -> Any:
        """The value with every nested node unwrapped into plain dicts, lists and scalars."""
        if isinstance(self.value, dict):
            return {k: v.plain() for k, v in self.value.items()}
        if isinstance(self.value, list):
            return [v.plain() for v in self.value]
        return self.value

    def issue(self, message: str) -> Issue:
        """An issue located at this node's value."""
        return Issue(
            file=self.file, line=self.line, column=self.column, key=self.path, message=message
        )

    def key_issue(self, message: str) -> Issue:
        """An issue located at the key holding this node (its value position if none)."""
        return Issue(
            file=self.file,
            line=self.key_line or self.line,
            column=self.key_column or self.column,
            key=self.path,
            message=message,
        )


def _describe(value: Any) -> str:
    return type(value).__name__


def _pos(pair: Any, fallback: tuple[int, int]) -> tuple[int, int]:
    try:
        line, col = pair
        return int(line) + 1, int(col) + 1
    except (TypeError, ValueError):
        return fallback


def _container_pos(obj: Any, fallback: tuple[int, int]) -> tuple[int, int]:
    lc = getattr(obj, "lc", None)
    if lc is None or lc.line is None:
        return fallback
    return int(lc.line) + 1, int(lc.col) + 1


MAX_NODES = 50_000
"""Most values one document may hold once its aliases are expanded (a "billion laughs"
file of a few hundred bytes would expand to billions)."""


class _TooLarge(Exception):
    def __init__(self, path: str, pos: tuple[int, int]) -> None:
        self.path = path
        self.pos = pos


class _Converter:
    def __init__(self, file: str) -> None:
        self.file = file
        self.issues: list[Issue] = []
        self._active: set[int] = set()
        self._budget = MAX_NODES

    def _issue(self, path: str, pos: tuple[int, int], message: str) -> None:
        self.issues.append(
            Issue(file=self.file, line=pos[0], column=pos[1], key=path, message=message)
        )

    def convert(
        self, obj: Any, path: str, pos: tuple[int, int], key_pos: tuple[int, int]
    ) -> YamlNode:
        node = YamlNode(None, self.file, pos[0], pos[1], path, key_pos[0], key_pos[1])
        self._budget -= 1
        if self._budget < 0:
            raise _TooLarge(path, pos)
        if isinstance(obj, CommentedMap | CommentedSeq):
            if id(obj) in self._active:
                self._issue(path, pos, "recursive alias: a value cannot contain itself")
                return node
            self._active.add(id(obj))
            try:
                node.value = self._container(obj, path, pos)
            finally:
                self._active.discard(id(obj))
            return node
        node.value = self._scalar(obj, path, pos)
        return node

    def _container(self, obj: Any, path: str, pos: tuple[int, int]) -> Any:
        if isinstance(obj, CommentedMap):
            out: dict[str, YamlNode] = {}
            for key, value in obj.items():
                try:
                    kpos = _pos(obj.lc.key(key), pos)
                    vpos = _pos(obj.lc.value(key), kpos)
                except (KeyError, AttributeError, TypeError):
                    # Keys brought in by a merge key (<<) carry no position of their own.
                    kpos = vpos = pos
                if not isinstance(key, str):
                    self._issue(
                        path or "(document)",
                        kpos,
                        f"keys must be strings, got {_describe(key)} {key!r}",
                    )
                    continue
                vpos = _container_pos(value, vpos)
                child = f"{path}.{key}" if path else key
                out[key] = self.convert(value, child, vpos, kpos)
            return out
        items: list[YamlNode] = []
        for i, value in enumerate(obj):
            try:
                ipos = _pos(obj.lc.item(i), pos)
            except (KeyError, AttributeError, TypeError, IndexError):
                ipos = pos
            ipos = _container_pos(value, ipos)
            items.append(self.convert(value, f"{path}[{i}]", ipos, ipos))
        return items

    def _scalar(self, obj: Any, path: str, pos: tuple[int, int]) -> Any:
        if obj is None or isinstance(obj, bool):
            return obj
        if isinstance(obj, str):
            return str(obj)
        if isinstance(obj, int):
            # ruamel's ScalarBoolean (an anchored true/false) is an int subclass.
            if type(obj).__name__ == "ScalarBoolean":
                return bool(obj)
            return int(obj)
        if isinstance(obj, float):
            return float(obj)
        if isinstance(obj, datetime.datetime):
            return datetime.datetime.fromisoformat(obj.isoformat())
        if isinstance(obj, datetime.date):
            return datetime.date(obj.year, obj.month, obj.day)
        if isinstance(obj, dict | list):
            self._issue(path, pos, f"unsupported YAML collection ({_describe(obj)})")
            return None
        tag = getattr(getattr(obj, "tag", None), "value", None) or getattr(obj, "tag", None)
        what = f"tag {tag}" if tag else f"value of type {_describe(obj)}"
        self._issue(path, pos, f"unsupported YAML {what}; use plain strings, numbers and maps")
        return None


def parse_yaml(text: str, file: str) -> tuple[YamlNode | None, list[Issue]]:
    """Parse one YAML document into a node tree; problems come back as issues."""
    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    try:
        data = yaml.load(text)
        # Only once the text parsed (so its nesting is bounded): refuse explicit tags,
        # which the round-trip loader would otherwise keep silently on maps and lists.
        tags = _tag_issues(yaml, text, file)
        if tags:
            return None, tags
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p) or str(exc)
        return None, [Issue(file=file, line=line, column=col, key="(yaml)", message=problem)]
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "mark", None)
        line = int(getattr(mark, "line", 0)) + 1
        col = int(getattr(mark, "column", 0)) + 1
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, [Issue(file=file, line=line, column=col, key="(yaml)", message=msg)]
    except RecursionError:
        return None, [Issue(file=file, line=1, column=1, key="(yaml)", message="nested too deeply")]
    except Exception as exc:  # ruamel raises assorted errors on malformed input
        return None, [
            Issue(file=file, line=1, column=1, key="(yaml)", message=f"cannot parse: {exc}")
        ]
    conv = _Converter(file)
    try:
        root = conv.convert(data, "", _container_pos(data, (1, 1)), (1, 1))
    except RecursionError:
        return None, [Issue(file=file, line=1, column=1, key="(yaml)", message="nested too deeply")]
    except _TooLarge as exc:
        message = (
            f"the document holds more than {MAX_NODES:,} values once its aliases are "
            "expanded (aliases of aliases multiply); refusing to expand it"
        )
        key = exc.path or "(yaml)"
        return None, [
            Issue(file=file, line=exc.pos[0], column=exc.pos[1], key=key, message=message)
        ]
    return root, conv.issues


def _tag_issues(yaml: YAML, text: str, file: str) -> list[Issue]:
    """An issue for every explicit tag (``!x``, ``!!str``) on any node: tags are not part of
    the workflow format, on scalars, sequences and mappings alike."""
    issues: list[Issue] = []
    for event in yaml.parse(text):
        tag = getattr(event, "tag", None)
        if tag is None or not isinstance(event, NodeEvent):
            continue
        mark = event.start_mark
        issues.append(
            Issue(
                file=file,
                line=mark.line + 1,
                column=mark.column + 1,
                key="(yaml)",
                message=f"YAML tags are not supported (found {tag}); "
                "use plain strings, numbers, lists and maps",
            )
        )
    return issues
