"""A hypothesis state machine driving several persistence providers with the same random
operations, the memory provider being the model every other store must agree with.

Every method of :class:`~wfe.core.protocols.PersistenceProvider` is a rule, and so are the
optional :class:`~wfe.core.protocols.StepLogStore` methods and the companion
:class:`~wfe.core.protocols.SearchIndex`. Checkpoints are built the way the host builds
them (changed pointers only, subscriptions opened and closed, events marked, errors, new
events, a fencing token), and each rule compares every store's result with memory's.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from wfe.core import (
    DataSerializationError,
    Event,
    EventSubscription,
    ExecutionError,
    PointerStatus,
    WfeError,
    WorkflowInstance,
    WorkflowStatus,
)
from wfe.core.protocols import (
    Checkpoint,
    EventDelivery,
)
from wfe.core.serialization import dumps
from wfe.core.testing import T0, SampleData, SampleLine, make_instance, make_pointer

from .property_support import Raised, call, outcome_of, protocol_errors, same, same_ranked

# Words of letters only, none a part of another, nor of any key, status or definition id:
# the memory index matches substrings, the SQL indexes whole tokens, and both agree on
# whole words.
WORDS = ["amberq", "birchq", "cedarq", "dunesq"]
DEFINITIONS = ["defalpha", "defbeta"]
NAMES = ["evtone", "evttwo"]
KEYS = ["k1", "k2"]
ZONES = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-3))]
MINUTES = st.integers(0, 240)
ENDED = [WorkflowStatus.COMPLETE, WorkflowStatus.TERMINATED, WorkflowStatus.SUSPENDED]
LIMITS = st.sampled_from([1, 2, 3, 1000])
TOKENS = st.none() | st.integers(1, 6)


class _Unstorable:
    """A value no store can hold: writes carrying it must be refused as a whole."""


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(WORDS),
    st.decimals(places=2, min_value=-100, max_value=100),
    st.text(max_size=6),
    st.datetimes(timezones=st.sampled_from(ZONES)),
)
search_data = st.fixed_dictionaries(
    {"n": scalars},
    optional={
        "who": st.none() | st.fixed_dictionaries({"name": st.sampled_from(WORDS)}),
        "tags": st.lists(st.sampled_from(WORDS), max_size=3),
        "deep": st.recursive(
            scalars, lambda c: st.lists(c, max_size=3) | st.tuples(c, c), max_leaves=6
        ),
    },
)
GOOD_DATA = st.one_of(
    st.none(),
    search_data,
    st.builds(
        SampleData,
        total=st.decimals(places=3, min_value=0, max_value=10),
        lines=st.lists(
            st.builds(SampleLine, sku=st.sampled_from(WORDS), price=st.decimals(places=1)),
            max_size=2,
        ),
    ),
)
# Now and then (one write in sixteen) a value that cannot be stored.
DATA = st.integers(0, 15).flatmap(
    lambda n: st.just({"bad": _Unstorable()}) if n == 0 else GOOD_DATA
)


def _words(n: int) -> st.SearchStrategy[str | None]:
    return st.none() | st.lists(st.sampled_from(WORDS), min_size=1, max_size=n).map(" ".join)


WORKFLOW_SPECS = st.fixed_dictionaries(
    {
        "zone": st.integers(0, len(ZONES) - 1),
        "pointers": st.integers(0, 4),
        "value": DATA,
        "status": st.sampled_from(list(WorkflowStatus)),
        "next_in": st.none() | MINUTES,
        "created": MINUTES,
        "done": st.none() | MINUTES,
        "definition": st.sampled_from(DEFINITIONS),
        "version": st.integers(1, 2),
        "reference": _words(1),
        "description": _words(3),
        "fingerprint": st.none() | st.just("fp-1"),
    }
)


Op = Callable[[Any], Awaitable[Any]]


def storable(checkpoint: Checkpoint) -> bool:
    """Whether every value of ``checkpoint`` can be serialised."""
    try:
        dumps(checkpoint.instance.data)
        for p in checkpoint.pointers:
            for name in ("persistence_data", "event_data", "context_item", "outcome"):
                dumps(getattr(p, name))
        for e in checkpoint.events:
            dumps(e.data)
    except DataSerializationError:
        return False
    return True


class PersistenceMachine(RuleBasedStateMachine):
    """Drive ``stores`` (name -> entered persistence provider, ``"memory"`` first) and
    ``indexes`` (their search companions) with the same operations."""

    def __init__(self, stores: dict[str, Any], indexes: dict[str, Any]) -> None:
        super().__init__()
        self.stores = stores
        self.indexes = indexes
        self.errors = protocol_errors()
        self.tick = itertools.count(1)
        self.copies: dict[str, WorkflowInstance] = {}  # the host's view of each instance
        self.known: list[str] = []  # every workflow id ever tried
        self.events: list[str] = []
        self.subs: list[EventSubscription] = []
        self.log_ids: list[str] = []

    # -- helpers -------------------------------------------------------------------------

    def stamp(self, minutes: int, zone: int = 0) -> datetime:
        """A time ``minutes`` after T0, unique to the microsecond (so that no two generated
        times tie: ties would leave orders unspecified), in one of ``ZONES``."""
        moment = T0 + timedelta(minutes=minutes, microseconds=next(self.tick))
        return moment.astimezone(ZONES[zone % len(ZONES)])

    def each(
        self,
        what: str,
        op: Op,
        *,
        on: dict[str, Any] | None = None,
        kinds: tuple[type[BaseException], ...] | None = None,
        compare: Callable[[str, str, Any, Any], None] = same,
    ) -> Any:
        """Run ``op`` on every store (or every provider of ``on``), compare each result
        with memory's, and return memory's."""
        providers = self.stores if on is None else on
        results = {
            name: outcome_of(lambda p=p: call(op, p), kinds or self.errors)
            for name, p in providers.items()
        }
        model = results["memory"]
        for name, got in results.items():
            if name != "memory":
                compare(what, name, model, got)
        return model

    def model_row(self, workflow_id: str) -> WorkflowInstance | None:
        got = outcome_of(
            lambda: call(lambda p: p.get_workflow(workflow_id), self.stores["memory"]),
            self.errors,
        )
        return None if isinstance(got, Raised) else got

    def resync(self, workflow_id: str) -> None:
        """Make the host's copy the stored instance again (after a refused write or a
        delivery, which change the store behind the copy's back)."""
        row = self.model_row(workflow_id)
        if row is None:
            self.copies.pop(workflow_id, None)
        else:
            self.copies[workflow_id] = row

    def pick(self, data: st.DataObject, items: list[Any], label: str) -> Any:
        return data.draw(st.sampled_from(items), label=label)

    def pick_workflow(self, data: st.DataObject) -> str:
        """A known workflow id, or now and then an id no store has."""
        if not self.known or data.draw(st.integers(0, 7), label="unknown id?") == 0:
            return "f" * 32
        return str(self.pick(data, self.known, "workflow"))

    # -- workflows -----------------------------------------------------------------------

    def _create(self, spec: dict[str, Any]) -> None:
        zone = spec["zone"]
        created, next_in, done = spec["created"], spec["next_in"], spec["done"]
        instance = make_instance(
            definition_id=spec["definition"],
            version=spec["version"],
            pointers=spec["pointers"],
            data=spec["value"],
            status=spec["status"],
            next_execution=None if next_in is None else self.stamp(next_in, zone),
            reference=spec["reference"],
            description=spec["description"],
            create_time=self.stamp(created, zone),
            complete_time=None if done is None else self.stamp(created + done, zone),
        )
        instance.fingerprint = spec["fingerprint"]
        result = self.each("create_workflow", lambda p: p.create_workflow(instance))
        self.known.append(instance.id)
        if not isinstance(result, Raised):
            self.copies[instance.id] = self.model_row(instance.id) or instance

    @initialize(specs=st.lists(WORKFLOW_SPECS, min_size=1, max_size=4))
    def seed_workflows(self, specs: list[dict[str, Any]]) -> None:
        for spec in specs:
            self._create(spec)

    @rule(spec=WORKFLOW_SPECS)
    def create_workflow(self, spec: dict[str, Any]) -> None:
        self._create(spec)

    @precondition(lambda self: bool(self.copies))
    @rule(data=st.data())
    def create_existing_workflow(self, data: st.DataObject) -> None:
        copy = self.copies[self.pick(data, sorted(self.copies), "workflow")]
        # Which error a duplicate raises is not specified: any WfeError, and no change.
        self.each("create of an existing id", lambda p: p.create_workflow(copy), kinds=(WfeError,))

    @rule(data=st.data(), with_pointers=st.booleans())
    def get_workflow(self, data: st.DataObject, with_pointers: bool) -> None:
        wid = self.pick_workflow(data)
        self.each(
            f"get_workflow({wid}, with_pointers={with_pointers})",
            lambda p: p.get_workflow(wid, with_pointers=with_pointers),
        )

    @rule(data=st.data(), token=st.integers(1, 6))
    def claim_workflow(self, data: st.DataObject, token: int) -> None:
        wid = self.pick_workflow(data)
        self.each(f"claim_workflow({wid}, {token})", lambda p: p.claim_workflow(wid, token))

    @rule(
        data=st.data(),
        status=st.none() | st.sampled_from(list(WorkflowStatus)),
        value=st.none() | DATA,
        next_in=st.none() | st.just(-1) | MINUTES,
        done=st.none() | st.just(-1) | MINUTES,
        changes=st.lists(
            st.tuples(st.integers(0, 9), st.sampled_from(list(PointerStatus)), st.booleans()),
            max_size=2,
        ),
        new_pointers=st.integers(0, 2),
        opened=st.lists(
            st.tuples(st.sampled_from(NAMES), st.sampled_from(KEYS), MINUTES), max_size=2
        ),
        closed=st.integers(0, 2),
        processed=st.integers(0, 2),
        errors=st.lists(st.tuples(st.sampled_from(WORDS), MINUTES, st.booleans()), max_size=2),
        notices=st.lists(
            st.tuples(st.sampled_from(NAMES), st.sampled_from(KEYS), MINUTES, DATA), max_size=1
        ),
        token=TOKENS,
    )
    def persist_checkpoint(
        self,
        data: st.DataObject,
        status: WorkflowStatus | None,
        value: Any,
        next_in: int | None,
        done: int | None,
        changes: list[tuple[int, PointerStatus, bool]],
        new_pointers: int,
        opened: list[tuple[str, str, int]],
        closed: int,
        processed: int,
        errors: list[tuple[str, int, bool]],
        notices: list[tuple[str, str, int, Any]],
        token: int | None,
    ) -> None:
        wid = self.pick_workflow(data)
        instance = self.copies.get(wid) or make_instance(pointers=1)
        instance.id = wid  # an unknown id: every store must refuse it
        listed: dict[str, Any] = {}
        if status is not None:
            instance.status = status
        if value is not None:
            instance.data = value
        if next_in is not None:
            instance.next_execution = None if next_in < 0 else self.stamp(next_in)
        if done is not None:
            instance.complete_time = None if done < 0 else self.stamp(done)
        pointers = instance.execution_pointers
        for index, pointer_status, active in changes:
            if pointers:
                p = pointers[index % len(pointers)]
                p.status, p.active = pointer_status, active
                p.retry_count += 1
                p.persistence_data = {"seen": p.retry_count, "at": self.stamp(0)}
                p.end_sequence = next(self.tick)
                listed[p.id] = p
        for _ in range(new_pointers):
            last = pointers[-1] if pointers else None
            p = make_pointer(
                len(pointers),
                predecessor_id=last.id if last else None,
                scope=[last.id] if last else [],
                sleep_until=self.stamp(30),
                context_item=(len(pointers), "item"),
            )
            pointers.append(p)
            listed[p.id] = p
        subs = []
        for name, key, minutes in opened:
            if not pointers:
                break
            p = pointers[minutes % len(pointers)]
            p.status, p.active, p.event_published = PointerStatus.WAITING_FOR_EVENT, False, False
            p.event_name, p.event_key = name, key
            listed[p.id] = p
            subs.append(
                EventSubscription(
                    workflow_id=wid,
                    step_id=p.step_id,
                    pointer_id=p.id,
                    event_name=name,
                    event_key=key,
                    as_of=self.stamp(minutes),
                )
            )
        to_close = [self.pick(data, self.subs, "close").id for _ in range(closed) if self.subs]
        marked = [self.pick(data, self.events, "mark") for _ in range(processed) if self.events]
        if self.subs and data.draw(st.booleans(), label="close an unknown subscription"):
            to_close.append("0" * 32)
        failures = [
            ExecutionError(
                workflow_id=wid,
                pointer_id=pointers[0].id if with_pointer and pointers else None,
                time=self.stamp(minutes),
                message=f"{word} failed ü",
            )
            for word, minutes, with_pointer in errors
        ]
        new_events = [
            Event(name=name, key=key, data=payload, time=self.stamp(minutes))
            for name, key, minutes, payload in notices
        ]
        if pointers and data.draw(st.booleans(), label="relist an unchanged pointer"):
            listed.setdefault(pointers[0].id, pointers[0])
        checkpoint = Checkpoint(
            instance=instance,
            pointers=list(listed.values()),
            opened_subscriptions=subs,
            closed_subscriptions=to_close,
            processed_events=marked,
            errors=failures,
            events=new_events,
            fencing_token=token,
        )
        unstorable = not storable(checkpoint)

        def compare(what: str, name: str, model: Any, got: Any) -> None:
            if unstorable and isinstance(model, Raised) and isinstance(got, Raised):
                # A write that is both unstorable and stale (or of an unknown instance)
                # may be refused for either reason: which check comes first is unspecified.
                assert got.kind in {model.kind, "DataSerializationError"}, (what, name, got)
                return
            same(what, name, model, got)

        result = self.each(
            f"persist_checkpoint({wid}, token={token})",
            lambda p: p.persist_checkpoint(checkpoint),
            compare=compare,
        )
        if isinstance(result, Raised):
            self.resync(wid)
        else:
            self.subs.extend(subs)
            self.events.extend(e.id for e in new_events)

    @precondition(lambda self: bool(self.subs) and bool(self.events))
    @rule(data=st.data(), minutes=MINUTES, mark=st.booleans(), token=TOKENS)
    def deliver_event(
        self, data: st.DataObject, minutes: int, mark: bool, token: int | None
    ) -> None:
        sub: EventSubscription = self.pick(data, self.subs, "subscription")
        delivery = EventDelivery(
            event_id=self.pick(data, self.events, "event"),
            subscription_id=sub.id,
            workflow_id=sub.workflow_id,
            pointer_id=sub.pointer_id,
            time=self.stamp(minutes),
            mark_processed=mark,
            fencing_token=token,
        )
        self.each(f"deliver_event({delivery})", lambda p: p.deliver_event(delivery))
        self.resync(sub.workflow_id)

    @precondition(lambda self: bool(self.subs))
    @rule(data=st.data(), minutes=MINUTES, mark=st.booleans(), token=TOKENS)
    def deliver_a_pending_event(
        self, data: st.DataObject, minutes: int, mark: bool, token: int | None
    ) -> None:
        """As the host does: the earliest pending event a subscription accepts."""
        sub: EventSubscription = self.pick(data, self.subs, "subscription")
        memory = self.stores["memory"]
        pending = call(
            lambda p: p.get_pending_events(sub.event_name, sub.event_key, sub.as_of), memory
        )
        if not pending:
            return
        delivery = EventDelivery(
            event_id=pending[0].id,
            subscription_id=sub.id,
            workflow_id=sub.workflow_id,
            pointer_id=sub.pointer_id,
            time=self.stamp(minutes),
            mark_processed=mark,
            fencing_token=token,
        )
        self.each(f"deliver_event({delivery})", lambda p: p.deliver_event(delivery))
        self.resync(sub.workflow_id)

    def _next_execution(self, workflow_id: str) -> Any:
        row = self.model_row(workflow_id)
        return (1, None) if row is None or row.next_execution is None else (0, row.next_execution)

    @rule(minutes=MINUTES, limit=LIMITS)
    def get_runnable_instances(self, minutes: int, limit: int) -> None:
        as_of = self.stamp(minutes)

        def compare(what: str, name: str, model: Any, got: Any) -> None:
            # Earliest due first; the stranded ones (no wake time) have no order among
            # themselves, and the protocol does not say where they come.
            same_ranked(what, name, model, got, self._next_execution)

        self.each(
            f"get_runnable_instances({as_of}, {limit})",
            lambda p: p.get_runnable_instances(as_of, limit),
            compare=compare,
        )

    @rule(
        status=st.none() | st.sampled_from(list(WorkflowStatus)),
        definition=st.none() | st.sampled_from(DEFINITIONS),
        skip=st.integers(0, 3),
        take=st.sampled_from([1, 2, 100]),
    )
    def list_workflows(
        self, status: WorkflowStatus | None, definition: str | None, skip: int, take: int
    ) -> None:
        self.each(
            f"list_workflows(status={status}, definition_id={definition}, {skip}, {take})",
            lambda p: p.list_workflows(
                status=status, definition_id=definition, skip=skip, take=take
            ),
        )

    # -- events --------------------------------------------------------------------------

    @rule(
        name=st.sampled_from(NAMES),
        key=st.sampled_from(KEYS),
        minutes=MINUTES,
        processed=st.booleans(),
        value=DATA,
    )
    def create_event(self, name: str, key: str, minutes: int, processed: bool, value: Any) -> None:
        event = Event(name=name, key=key, data=value, time=self.stamp(minutes), processed=processed)
        result = self.each(f"create_event({event})", lambda p: p.create_event(event))
        if not isinstance(result, Raised):
            self.events.append(event.id)

    @rule(data=st.data())
    def get_event(self, data: st.DataObject) -> None:
        event_id = self.pick(data, [*self.events, "e" * 32], "event")
        # A missing event raises "a WfeError subclass": which one is not specified.
        self.each(f"get_event({event_id})", lambda p: p.get_event(event_id), kinds=(WfeError,))

    @rule(minutes=MINUTES, limit=LIMITS)
    def get_runnable_events(self, minutes: int, limit: int) -> None:
        as_of = self.stamp(minutes)
        self.each(
            f"get_runnable_events({as_of}, {limit})",
            lambda p: p.get_runnable_events(as_of, limit),
        )

    @rule(name=st.sampled_from(NAMES), key=st.sampled_from(KEYS), minutes=MINUTES, limit=LIMITS)
    def get_pending_events(self, name: str, key: str, minutes: int, limit: int) -> None:
        as_of = self.stamp(minutes)
        self.each(
            f"get_pending_events({name}, {key}, {as_of}, {limit})",
            lambda p: p.get_pending_events(name, key, as_of, limit),
        )

    @rule(name=st.sampled_from(NAMES), key=st.sampled_from(KEYS), minutes=MINUTES)
    def get_subscriptions(self, name: str, key: str, minutes: int) -> None:
        as_of = self.stamp(minutes)
        self.each(
            f"get_subscriptions({name}, {key}, {as_of})",
            lambda p: p.get_subscriptions(name, key, as_of),
        )

    @rule(data=st.data())
    def get_errors(self, data: st.DataObject) -> None:
        wid = self.pick_workflow(data)
        self.each(f"get_errors({wid})", lambda p: p.get_errors(wid))

    # -- retention -----------------------------------------------------------------------

    @rule(
        minutes=st.integers(0, 480),
        statuses=st.integers(0, 7).flatmap(
            # Now and then a refused choice (empty, or naming RUNNABLE).
            lambda n: (
                st.lists(st.sampled_from(list(WorkflowStatus)), max_size=2, unique=True)
                if n == 0
                else st.lists(st.sampled_from(ENDED), min_size=1, max_size=3, unique=True)
            )
        ),
        limit=LIMITS,
    )
    def purge_workflows(self, minutes: int, statuses: list[WorkflowStatus], limit: int) -> None:
        before = self.stamp(minutes)
        self.each(
            f"count_purgeable({before}, {statuses})",
            lambda p: p.count_purgeable(before, statuses),
        )
        gone = self.each(
            f"purge_workflows({before}, {statuses}, {limit})",
            lambda p: p.purge_workflows(before, statuses, limit),
        )
        if not isinstance(gone, Raised):
            for wid in gone:
                self.copies.pop(wid, None)

    @rule(minutes=MINUTES, limit=LIMITS)
    def purge_events(self, minutes: int, limit: int) -> None:
        before = self.stamp(minutes)
        self.each(f"purge_events({before}, {limit})", lambda p: p.purge_events(before, limit))

    @rule()
    def ensure_store_exists(self) -> None:
        self.each("ensure_store_exists", lambda p: p.ensure_store_exists())

    # -- the whole state -----------------------------------------------------------------

    def compare_everything(self) -> None:
        """Every instance, its errors and every event agree (called at the end)."""
        for wid in self.known:
            self.each(f"final get_workflow({wid})", lambda p, w=wid: p.get_workflow(w))
            self.each(f"final get_errors({wid})", lambda p, w=wid: p.get_errors(w))
        for event_id in self.events:
            self.each(
                f"final get_event({event_id})",
                lambda p, e=event_id: p.get_event(e),
                kinds=(WfeError,),
            )
        far = T0 + timedelta(days=3650)
        for name in NAMES:
            for key in KEYS:
                self.each(
                    f"final get_subscriptions({name}, {key})",
                    lambda p, n=name, k=key: p.get_subscriptions(n, k, far),
                )
