"""Step types: how a YAML step's ``type:`` becomes a :class:`~wfe.core.StepBody`.

A step type is any object with two methods (the :class:`StepType` protocol):
``validate_config(node, info)`` returns the problems of the step's ``config:`` map
(as :class:`Issue` objects positioned with ``node.issue(...)``), and
``build(config, info)`` returns the StepBody class that runs the step, with the
configuration bound on the class. Step types are found through the entry-point group
``wfe.yaml.step_types`` (name = the ``type:`` string), so a third-party distribution
adds one by declaring, in its ``pyproject.toml``::

    [project.entry-points."wfe.yaml.step_types"]
    http = "my_package.steps:HttpStepType"

The entry point may name an instance or a class (instantiated without arguments).
A body reads and writes workflow data (a ``dict``) through ``ctx.workflow.data``; by
convention it puts its outputs at the top level and a record of its run under
``data["steps"][info.name]``. A body must finish in one run when used as a hook.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import attrs

from wfe.core import ConfigurationError, StepBody, WfeError

from ._errors import Issue
from ._nodes import YamlNode

STEP_TYPES_GROUP = "wfe.yaml.step_types"


@attrs.frozen(kw_only=True)
class StepInfo:
    """What a step type is told about the step it validates or builds.

    ``base_dir`` is the directory of the YAML file (the current directory for text),
    against which relative paths in the configuration resolve. ``inputs`` are the
    workflow's declared input names (no output may overwrite them), ``outputs`` the
    step's declared output names (``None``: it declares none, so it may set any), and
    ``exported`` every name the workflow declares (inputs, outputs of the workflow and
    of its steps), which shell steps export to their environment.
    """

    name: str
    workflow_id: str
    file: str
    base_dir: Path
    inputs: frozenset[str] = frozenset()
    outputs: frozenset[str] | None = None
    exported: frozenset[str] = frozenset()


@runtime_checkable
class StepType(Protocol):
    """The plugin interface of YAML step types (see the module documentation)."""

    def validate_config(self, node: YamlNode, info: StepInfo) -> list[Issue]:
        """Every problem of the ``config:`` mapping (an empty mapping, positioned at the
        step, when the step has no ``config:``)."""
        ...

    def build(self, config: Mapping[str, Any], info: StepInfo) -> type[StepBody]:
        """The body class running the step; ``config`` is the validated plain mapping."""
        ...


class StepTypeRegistry:
    """Step types by name: explicit ones first, then the ``wfe.yaml.step_types`` entry points."""

    def __init__(self, extra: Mapping[str, StepType] | None = None) -> None:
        self._extra = dict(extra or {})
        self._loaded: dict[str, StepType] = {}

    def names(self) -> list[str]:
        from wfe.core import discovery

        return sorted({*self._extra, *discovery.installed_schemes(STEP_TYPES_GROUP)})

    def find(self, name: str) -> StepType | str:
        """The step type ``name``, or a message saying why there is none."""
        if name in self._extra:
            return self._extra[name]
        if name in self._loaded:
            return self._loaded[name]
        from wfe.core import discovery

        names = self.names()
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            return f"unknown step type {name!r}{hint}; installed: {', '.join(names) or 'none'}"
        try:
            obj = discovery.load_entry_point(STEP_TYPES_GROUP, name)
            step_type = obj() if isinstance(obj, type) else obj
        except (WfeError, ConfigurationError) as exc:
            return f"step type {name!r} cannot be loaded: {exc}"
        except Exception as exc:  # a broken third-party plugin must not crash validation
            return f"step type {name!r} cannot be loaded: {type(exc).__name__}: {exc}"
        if not isinstance(step_type, StepType):
            return f"step type {name!r} ({obj!r}) lacks validate_config/build"
        self._loaded[name] = step_type
        return step_type
