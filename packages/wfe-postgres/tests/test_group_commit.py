"""Group commit: concurrent checkpoints share statements, and each is stored or refused
as a whole — a stale one or a faulty one does not take the others down."""

from __future__ import annotations

import pytest
import trio

from wfe.core import Event, ExecutionError, ProviderError, StaleLeaseError
from wfe.core.protocols import Checkpoint
from wfe.core.testing import T0, make_instance, make_pointer
from wfe.postgres import PostgresPersistenceProvider


async def test_a_stale_or_faulty_checkpoint_fails_alone(store_url: str) -> None:
    # One connection: while it is busy, the others' checkpoints queue and go together.
    async with PostgresPersistenceProvider(store_url, pool_size=1) as store:
        instances = [make_instance(pointers=1, data={"n": i}) for i in range(30)]
        for instance in instances:
            await store.create_workflow(instance)
        stale, faulty = instances[3], instances[7]
        await store.claim_workflow(stale.id, 10)  # a newer holder: token 1 is stale now
        taken = Event(name="e", key="k")
        await store.create_event(taken)
        outcomes: dict[str, BaseException | None] = {}

        async def persist(i: int) -> None:
            instance = instances[i]
            instance.data = {"n": i, "stored": True}
            instance.execution_pointers.append(make_pointer(1))
            events = [taken] if instance is faulty else []  # its id exists already
            try:
                await store.persist_checkpoint(
                    Checkpoint(
                        instance=instance,
                        pointers=instance.execution_pointers,
                        events=events,
                        fencing_token=1,
                    )
                )
                outcomes[instance.id] = None
            except ProviderError as exc:
                outcomes[instance.id] = exc

        before = store._committer.batches
        async with trio.open_nursery() as nursery:
            for i in range(len(instances)):
                nursery.start_soon(persist, i)
        assert store._committer.batches - before < len(instances), "nothing was grouped"

        assert isinstance(outcomes.pop(stale.id), StaleLeaseError)
        faulty_outcome = outcomes.pop(faulty.id)
        assert isinstance(faulty_outcome, ProviderError)
        assert not isinstance(faulty_outcome, StaleLeaseError)
        assert set(outcomes.values()) == {None}
        for instance in instances:
            stored = await store.get_workflow(instance.id)
            if instance in (stale, faulty):
                assert "stored" not in stored.data
                assert len(stored.execution_pointers) == 1
            else:
                assert stored == instance


async def test_a_checkpoint_alone_is_stored_whole_in_either_form(store_url: str) -> None:
    # Alone in its batch, a checkpoint with few rows per part is sent as scalars, one
    # with more as arrays: both store every part, keep the errors' order and obey the
    # fence.
    async with PostgresPersistenceProvider(store_url, pool_size=1) as store:
        for count in (1, 8, 9, 40):
            instance = make_instance(pointers=1, data={"count": count})
            await store.create_workflow(instance)
            await store.claim_workflow(instance.id, 5)
            instance.execution_pointers.extend(make_pointer(i + 2) for i in range(count))
            errors = [
                ExecutionError(workflow_id=instance.id, pointer_id=None, time=T0, message=f"{i}")
                for i in range(count)
            ]
            await store.persist_checkpoint(
                Checkpoint(
                    instance=instance,
                    pointers=instance.execution_pointers,
                    errors=errors,
                    fencing_token=5,
                )
            )
            assert await store.get_workflow(instance.id) == instance
            assert [e.message for e in await store.get_errors(instance.id)] == [
                f"{i}" for i in range(count)
            ]
            instance.data = {"stale": True}
            stale = Checkpoint(instance=instance, pointers=[], fencing_token=4)
            with pytest.raises(StaleLeaseError):
                await store.persist_checkpoint(stale)
            assert (await store.get_workflow(instance.id)).data == {"count": count}
