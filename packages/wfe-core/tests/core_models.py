"""Module-level attrs data classes for the engine tests (stored data must be importable)."""

from __future__ import annotations

from decimal import Decimal

import attrs


@attrs.define
class Counter:
    """Typed workflow data for flow, loop and data-mapping tests."""

    n: int = 0
    limit: int = 0
    text: str = ""
    items: list[int] = attrs.Factory(list)
    log: list[str] = attrs.Factory(list)
    flag: bool = False


@attrs.define
class Invoice:
    """Money kept exactly: a Decimal must come back equal, not as a float."""

    amount: Decimal = Decimal("0")
    total: Decimal = Decimal("0")
    lines: list[Decimal] = attrs.Factory(list)
