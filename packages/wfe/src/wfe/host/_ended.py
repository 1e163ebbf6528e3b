"""The end of a workflow run here, as its final checkpoint stored it.

``wait_for_workflow`` on a workflow this host ran to its end would read it back from
the store right after writing it (on PostgreSQL a round trip and a decode of every
pointer, on the path of every caller waiting for a result). The host keeps instead,
for the callers waiting at that moment only, the instance in the form the stores keep
it (``wfe.core.serialization``: the data's JSON, each pointer's body, times in
microseconds), and each caller decodes its own copy: what a read would have returned,
never an object the run or a post-run middleware still holds.
"""

from __future__ import annotations

import attrs

from wfe.core import WorkflowInstance
from wfe.core.serialization import (
    dumps,
    from_us,
    from_us_opt,
    loads,
    pointer_body,
    pointer_from_body,
    to_us,
    to_us_opt,
)


@attrs.frozen
class StoredEnd:
    """An ended instance, encoded as a store keeps it."""

    instance: WorkflowInstance  # its fields other than data, pointers and times
    data: str
    pointers: list[tuple[str, int, str]]
    times: tuple[int | None, int, int | None]  # next_execution, create, complete

    @classmethod
    def of(cls, instance: WorkflowInstance) -> StoredEnd:
        """Encode ``instance`` now (its pointers in stored order: by sequence)."""
        ordered = sorted(instance.execution_pointers, key=lambda p: p.sequence)
        return cls(
            instance=attrs.evolve(instance, data=None, execution_pointers=[]),
            data=dumps(instance.data),
            pointers=[(p.id, p.sequence, pointer_body(p)) for p in ordered],
            times=(
                to_us_opt(instance.next_execution),
                to_us(instance.create_time),
                to_us_opt(instance.complete_time),
            ),
        )

    def decode(self) -> WorkflowInstance:
        """A fresh instance, as reading it from the store would give it."""
        next_execution, create, complete = self.times
        return attrs.evolve(
            self.instance,
            data=loads(self.data),
            execution_pointers=[pointer_from_body(i, s, b) for i, s, b in self.pointers],
            next_execution=from_us_opt(next_execution),
            create_time=from_us(create),
            complete_time=from_us_opt(complete),
        )
