"""The persistence machine's rules for the optional step-log capability and the companion
search index (split from ``persistence_machine.py`` by concern)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from wfe.core import WorkflowStatus
from wfe.core.protocols import DataFilter, SearchFilters, StepLogLine

from .persistence_machine import DEFINITIONS, MINUTES, WORDS, PersistenceMachine, scalars
from .property_support import call, same


class FullPersistenceMachine(PersistenceMachine):
    """:class:`PersistenceMachine` plus step logs and search."""

    # -- step logs (StepLogStore) ------------------------------------------------------------

    @rule(data=st.data(), lines=st.lists(st.tuples(st.sampled_from(WORDS), MINUTES), max_size=3))
    def append_step_logs(self, data: st.DataObject, lines: list[tuple[str, int]]) -> None:
        wid = self.pick_workflow(data)
        batch = [
            StepLogLine(
                workflow_id=wid,
                pointer_id="p",
                step_name=step,
                attempt=1 + minutes % 2,
                stream="stdout" if minutes % 3 else "stderr",
                line=f"{step} line {minutes} ü\t",
                time=self.stamp(minutes),
            )
            for step, minutes in lines
        ]
        self.each(f"append_step_logs({len(batch)} lines)", lambda p: p.append_step_logs(batch))
        self.log_ids.append(wid)

    @precondition(lambda self: bool(self.log_ids))
    @rule(
        data=st.data(),
        step=st.none() | st.sampled_from(WORDS),
        after=st.integers(0, 3),
        limit=st.sampled_from([1, 2, 1000]),
    )
    def read_step_logs(self, data: st.DataObject, step: str | None, after: int, limit: int) -> None:
        wid = self.pick(data, self.log_ids, "workflow")
        results = {}
        for name, store in self.stores.items():
            # ``seq`` numbers are each store's own: ``after`` is translated to the seq of
            # the store's own ``after``-th line, and seqs are compared by their order.
            every = call(lambda p: p.read_step_logs(wid, step=step), store)
            seqs = [x.seq for x in every]
            assert seqs == sorted(set(seqs)), f"{name}: seqs not increasing: {seqs}"
            cursor = every[after - 1].seq if 0 < after <= len(every) else 0
            if after > len(every):
                cursor = every[-1].seq if every else 0
            page = call(
                lambda p, c=cursor: p.read_step_logs(wid, step=step, after=c, limit=limit), store
            )
            results[name] = [attrs.evolve(x, seq=0) for x in page]
        for name, got in results.items():
            same(
                f"read_step_logs({wid}, step={step}, after#{after}, {limit})",
                name,
                results["memory"],
                got,
            )

    # -- search (the companion index) ----------------------------------------------------

    @precondition(lambda self: bool(self.copies))
    @rule(data=st.data())
    def index(self, data: st.DataObject) -> None:
        wid = self.pick(data, sorted(self.copies), "workflow")
        row = self.model_row(wid)
        if row is not None:
            self.each(f"index({wid})", lambda p: p.index(row), on=self.indexes)

    @precondition(lambda self: bool(self.known))
    @rule(data=st.data())
    def remove_from_index(self, data: st.DataObject) -> None:
        ids = data.draw(st.lists(st.sampled_from([*self.known, "0" * 32]), max_size=2))
        self.each(f"remove({ids})", lambda p: p.remove(ids), on=self.indexes)

    @rule(
        terms=st.lists(
            st.sampled_from([*WORDS, *DEFINITIONS, "suspended", "complete"]), max_size=2
        ).map(" ".join),
        status=st.none() | st.sampled_from(list(WorkflowStatus)),
        definition=st.none() | st.sampled_from(DEFINITIONS),
        version=st.none() | st.integers(1, 2),
        reference=st.none() | st.sampled_from(WORDS),
        created=st.tuples(st.none() | MINUTES, st.none() | MINUTES),
        completed=st.tuples(st.none() | MINUTES, st.none() | MINUTES),
        fields=st.lists(
            st.tuples(st.sampled_from(["n", "who.name", "tags", "total", "lines.sku"]), scalars),
            max_size=2,
        ),
        skip=st.integers(0, 2),
        take=st.sampled_from([1, 3, 100]),
    )
    def search(
        self,
        terms: str,
        status: WorkflowStatus | None,
        definition: str | None,
        version: int | None,
        reference: str | None,
        created: tuple[int | None, int | None],
        completed: tuple[int | None, int | None],
        fields: list[tuple[str, Any]],
        skip: int,
        take: int,
    ) -> None:
        def moment(m: int | None) -> datetime | None:
            return None if m is None else self.stamp(m)

        filters = SearchFilters(
            status=status,
            definition_id=definition,
            version=version,
            reference=reference,
            created_from=moment(created[0]),
            created_to=moment(created[1]),
            completed_from=moment(completed[0]),
            completed_to=moment(completed[1]),
            data=[DataFilter(f, v) for f, v in fields],
        )
        self.each(
            f"search({terms!r}, {filters}, {skip}, {take})",
            lambda p: p.search(terms, filters, skip, take),
            on=self.indexes,
        )
