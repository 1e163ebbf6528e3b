"""What every in-memory provider shares: nothing to connect to, nothing to close."""

from __future__ import annotations

from types import TracebackType
from typing import Self

import trio


class InProcess:
    """Entering and leaving only checkpoint: the state lives in the process."""

    async def __aenter__(self) -> Self:
        await trio.lowlevel.checkpoint()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await trio.lowlevel.checkpoint()
