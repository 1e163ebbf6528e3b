"""The workflow leases this host's runs hold, and the write that gives one up.

A run's lease goes when its pass ends: on a store that can
(:class:`~wfe.core.protocols.ReleasingCheckpoint`), with the pass's last checkpoint,
in one write; else by a release after it. Meanwhile a delivery to the workflow waits
for that rather than fail to take the lease (see ``Dispatcher._ending_here``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

from wfe.core.protocols import Checkpoint, DistributedLockProvider, Lease, ReleasingCheckpoint

from ._leases import LeaseKeeper, _Held


class Holding:
    """A workflow lease a run here holds: its renewal, whether its pass is over and
    whether its last checkpoint gave it up, and its letting go."""

    __slots__ = ("given_up", "kept", "passed", "released")

    def __init__(self, kept: _Held) -> None:
        self.kept = kept  # the lease keeper's handle (see LeaseKeeper.keep)
        self.passed = False
        self.given_up = False
        self.released = trio.Event()


def last_writer(
    store: ReleasingCheckpoint,
    locks: DistributedLockProvider,
    keeper: LeaseKeeper,
    holding: Holding,
    lease: Lease,
) -> Callable[[Checkpoint], Awaitable[None]]:
    """The write of a pass's last checkpoint, giving ``lease`` up with it."""

    async def write(checkpoint: Checkpoint) -> None:
        # No renewal after this: a renewal that finds the lease gone must not stop a
        # run whose last write is done.
        keeper.drop(holding.kept)
        await store.persist_checkpoint_releasing(checkpoint, locks, lease)
        # Let go once the run is no longer here (see Dispatcher._execute): a delivery
        # waiting for it then runs the workflow at once.
        holding.given_up = True

    return write
