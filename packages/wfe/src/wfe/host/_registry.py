"""Registered workflow definitions, by id and version."""

from __future__ import annotations

from typing import Any

from wfe.core import DefinitionError, DefinitionNotFoundError, WorkflowDefinition


def as_definition(obj: Any) -> WorkflowDefinition:
    """A definition, or anything carrying one as ``.definition`` (a compiled YAML workflow)."""
    if isinstance(obj, WorkflowDefinition):
        return obj
    inner = getattr(obj, "definition", None)
    if isinstance(inner, WorkflowDefinition):
        return inner
    raise DefinitionError(
        f"cannot register {type(obj).__qualname__}: expected a WorkflowDefinition "
        "(from WorkflowBuilder.build) or an object with a .definition (a compiled YAML workflow)"
    )


class DefinitionRegistry:
    """Definitions by ``(id, version)``; the highest version is the default."""

    def __init__(self) -> None:
        self._defs: dict[tuple[str, int], WorkflowDefinition] = {}
        # Taken once at registration: hashing the step graph costs ~20 µs, and every
        # start and every run compares it.
        self._fingerprints: dict[tuple[str, int], str] = {}

    def register(self, obj: Any) -> WorkflowDefinition:
        definition = as_definition(obj)
        key = (definition.id, definition.version)
        existing = self._defs.get(key)
        fingerprint = definition.fingerprint
        if existing is not None and self._fingerprints[key] != fingerprint:
            raise DefinitionError(
                f"workflow {definition.id!r} version {definition.version} is already "
                "registered with a different step graph; give the new graph a new version"
            )
        self._defs[key] = definition
        self._fingerprints[key] = fingerprint
        # A compiled YAML workflow carries the workflows loaded with it (its includes).
        for companion in getattr(obj, "companions", ()):
            self.register(companion)
        return definition

    def find(self, definition_id: str, version: int | None = None) -> WorkflowDefinition:
        if version is not None:
            found = self._defs.get((definition_id, version))
        else:
            versions = [v for (i, v) in self._defs if i == definition_id]
            found = self._defs[(definition_id, max(versions))] if versions else None
        if found is None:
            known = sorted({f"{i} v{v}" for (i, v) in self._defs})
            wanted = definition_id if version is None else f"{definition_id} v{version}"
            raise DefinitionNotFoundError(
                f"no workflow definition {wanted!r} is registered; registered: "
                f"{', '.join(known) or 'none'}"
            )
        return found

    def fingerprint(self, definition: WorkflowDefinition) -> str:
        """``definition.fingerprint`` as it was registered."""
        return self._fingerprints[(definition.id, definition.version)]

    def get(self, definition_id: str, version: int) -> WorkflowDefinition | None:
        return self._defs.get((definition_id, version))

    def all(self) -> list[WorkflowDefinition]:
        return list(self._defs.values())
