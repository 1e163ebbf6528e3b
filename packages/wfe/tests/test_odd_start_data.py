"""start_workflow refuses start data the store could not hold, naming the field, and
stores nothing (issue 11)."""

from __future__ import annotations

from typing import Any

import pytest

from wfe.core import DataSerializationError, WorkflowBuilder


def _deep(levels: int) -> Any:
    value: Any = []
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("data", "field", "why"),
    [
        ({"n": 10**5000}, "data.n", "digits"),
        ({"tree": _deep(100_000)}, "data.tree[0]", "nested more than"),
        ({"name": "bad\udcff"}, "data.name", "surrogate"),
    ],
)
async def test_unstorable_start_data_is_refused_naming_the_field(
    host_factory: Any, data: dict[str, Any], field: str, why: str
) -> None:
    definition = WorkflowBuilder(dict).start_with(lambda ctx: None).build("odd-data", 1)
    async with host_factory(definition) as host:
        with pytest.raises(DataSerializationError, match=why) as info:
            await host.start_workflow("odd-data", 1, data)
        assert field in str(info.value)
        assert await host.list_workflows() == []
