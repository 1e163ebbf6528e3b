"""Random workflow definitions for the property tests: a hypothesis strategy of small
step trees (sequences, if, while, for-each, parallel, sagas, a final decide; steps that
succeed, fail and retry, suspend, terminate or compensate), and the fluent-builder code
that turns a tree into a :class:`~wfe.core.WorkflowDefinition`.

Every step records its name (and loop item) in ``data["log"]`` when it succeeds, and a
compensation records ``undo:<name>``, so the final data says what ran. Outcomes that
depend on timing are not generated: a step that ends the workflow (suspend, terminate,
retries exhausted) never stands where other branches run concurrently with it.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import attrs
from hypothesis import strategies as st

from wfe.core import ErrorBehavior, StepError, WorkflowBuilder

FAST_RETRY = ErrorBehavior.retry(timedelta(milliseconds=10), max_retries=3)

# How a step behaves: "ok"; "retryN": fails on its first N attempts, then succeeds;
# "exhaust": always fails, 1 retry (pointer FAILED, workflow SUSPENDED); "suspend" and
# "terminate": fails once with that behaviour; "compensate": fails, its compensation runs
# and the flow goes on; "fail": fails with the definition's default behaviour (inside a
# saga: the saga compensates). test_saga_concurrency.py covers a saga failing beside a
# running sibling, whose outcome depends on timing.
ENDING = ("exhaust", "suspend", "terminate")
ANYWHERE = ("ok", "ok", "ok", "retry1", "retry2", "compensate")


@attrs.frozen
class Step:
    fail: str
    label: str = ""


@attrs.frozen
class Seq:
    items: tuple[Any, ...]


@attrs.frozen
class If:
    condition: bool
    body: Seq


@attrs.frozen
class While:
    times: int
    body: Seq
    label: str = ""


@attrs.frozen
class ForEach:
    items: tuple[int, ...]
    parallel: bool
    body: Seq


@attrs.frozen
class Parallel:
    branches: tuple[Seq, ...]


@attrs.frozen
class Saga:
    body: Seq


@attrs.frozen
class Decide:
    value: int
    branches: tuple[Seq, Seq]


def _steps(concurrent: bool, in_saga: bool) -> st.SearchStrategy[Step]:
    # Outside a saga "fail" ends the workflow too (the default retries run out).
    modes: tuple[str, ...] = ANYWHERE
    if in_saga:
        # A saga failing while a concurrent sibling runs may cancel the sibling before
        # or after it ran (both are right, timing decides): no failure beside siblings.
        modes = ("ok", "ok", "retry1") if concurrent else ("ok", "ok", "retry1", "fail")
    elif not concurrent:
        modes = (*modes, *ENDING, "fail")
    return st.sampled_from(modes).map(Step)


def _tree(depth: int, concurrent: bool, in_saga: bool) -> st.SearchStrategy[Seq]:
    leaf = _steps(concurrent, in_saga)
    if depth <= 0:
        return st.lists(leaf, min_size=1, max_size=2).map(lambda xs: Seq(tuple(xs)))
    inner = _tree(depth - 1, concurrent, in_saga)
    inner_concurrent = _tree(depth - 1, True, in_saga)
    concurrent_nodes = [
        st.builds(
            ForEach,
            st.lists(st.integers(0, 9), max_size=3).map(tuple),
            st.just(True),
            inner_concurrent,
        ),
        st.builds(Parallel, st.lists(inner_concurrent, min_size=1, max_size=3).map(tuple)),
    ]
    node = st.one_of(
        leaf,
        leaf,
        st.builds(If, st.booleans(), inner),
        st.builds(While, st.integers(0, 2), inner),
        st.builds(
            ForEach,
            st.lists(st.integers(0, 9), max_size=3).map(tuple),
            st.just(False),
            inner,
        ),
        *concurrent_nodes,
        st.builds(Saga, _tree(depth - 1, concurrent, True)) if not in_saga else leaf,
    )
    return st.lists(node, min_size=1, max_size=3).map(lambda xs: Seq(tuple(xs)))


def _label(tree: Any, counter: itertools.count[int]) -> Any:
    """The tree with every step and loop named ``s<n>`` / ``w<n>``, in order."""
    if isinstance(tree, Step):
        return attrs.evolve(tree, label=f"s{next(counter)}")
    if isinstance(tree, While):
        return While(tree.times, _label(tree.body, counter), f"w{next(counter)}")
    if isinstance(tree, Seq):
        return Seq(tuple(_label(x, counter) for x in tree.items))
    if isinstance(tree, If | ForEach | Saga):
        return attrs.evolve(tree, body=_label(tree.body, counter))
    if isinstance(tree, Parallel):
        return Parallel(tuple(_label(b, counter) for b in tree.branches))
    if isinstance(tree, Decide):
        return Decide(
            tree.value, (_label(tree.branches[0], counter), _label(tree.branches[1], counter))
        )
    raise TypeError(tree)


def _with_decide(parts: tuple[Seq, Decide | None]) -> Seq:
    body, decide = parts
    return Seq((*body.items, decide)) if decide is not None else body


workflow_trees = (
    st.tuples(
        _tree(2, False, False),
        st.none()
        | st.builds(
            Decide, st.integers(0, 1), st.tuples(_tree(1, False, False), _tree(1, False, False))
        ),
    )
    .map(_with_decide)
    .map(lambda t: _label(t, itertools.count()))
)


def is_concurrent(tree: Any) -> bool:
    """Whether some part of the tree runs branches at the same time (then the order of
    the log is not specified, only its contents)."""
    if isinstance(tree, Parallel):
        return True
    if isinstance(tree, ForEach) and tree.parallel and tree.items:
        return True
    children: list[Any] = []
    if isinstance(tree, Seq):
        children = list(tree.items)
    elif isinstance(tree, If | While | ForEach | Saga):
        children = [tree.body]
    elif isinstance(tree, Decide):
        children = list(tree.branches)
    return any(is_concurrent(c) for c in children)


def describe(tree: Any, indent: int = 0) -> str:
    """The tree as indented builder-like lines, for failure messages."""
    pad = "  " * indent
    if isinstance(tree, Seq):
        return "\n".join(describe(x, indent) for x in tree.items)
    if isinstance(tree, Step):
        return f"{pad}{tree.label}: {tree.fail}"
    if isinstance(tree, If):
        return f"{pad}if_do({tree.condition}):\n{describe(tree.body, indent + 1)}"
    if isinstance(tree, While):
        return f"{pad}while_do({tree.label} < {tree.times}):\n{describe(tree.body, indent + 1)}"
    if isinstance(tree, ForEach):
        head = f"{pad}for_each({list(tree.items)}, parallel={tree.parallel}):"
        return f"{head}\n{describe(tree.body, indent + 1)}"
    if isinstance(tree, Saga):
        return f"{pad}saga:\n{describe(tree.body, indent + 1)}"
    if isinstance(tree, Parallel):
        parts = [f"{pad}parallel:"]
        parts += [f"{pad}  do:\n{describe(b, indent + 2)}" for b in tree.branches]
        return "\n".join(parts)
    if isinstance(tree, Decide):
        parts = [f"{pad}decide({tree.value}):"]
        parts += [
            f"{pad}  branch {v}:\n{describe(b, indent + 2)}" for v, b in enumerate(tree.branches)
        ]
        return "\n".join(parts)
    raise TypeError(tree)


# -- building ------------------------------------------------------------------------------


def _record(ctx: Any, text: str) -> None:
    item = ctx.item
    ctx.workflow.data["log"].append(text if item is None else f"{text}@{item}")


def _body(step: Step) -> Any:
    label, fail = step.label, step.fail

    def run(ctx: Any) -> None:
        attempts = ctx.pointer.retry_count
        if fail.startswith("retry") and attempts < int(fail[5:]):
            raise StepError(f"{label}: attempt {attempts + 1} fails")
        if fail in ("exhaust", "suspend", "terminate", "compensate", "fail"):
            raise StepError(f"{label}: fails ({fail})")
        _record(ctx, label)

    return run


def _add_step(b: Any, step: Step, in_saga: bool) -> Any:
    sb = b.then(_body(step)).name(step.label)
    if step.fail.startswith("retry"):
        sb.on_error(FAST_RETRY)
    elif step.fail == "exhaust":
        sb.on_error(ErrorBehavior.retry(timedelta(milliseconds=10), max_retries=1))
    elif step.fail == "suspend":
        sb.on_error(ErrorBehavior.suspend())
    elif step.fail == "terminate":
        sb.on_error(ErrorBehavior.terminate())
    elif step.fail == "compensate":
        sb.on_error(ErrorBehavior.compensate())
    if step.fail == "compensate" or in_saga:
        undo = f"undo:{step.label}"
        sb.compensate_with(lambda ctx: _record(ctx, undo)).name(step.label)
    return sb


def _emit(b: Any, tree: Any, root: Any, in_saga: bool) -> Any:
    """Append ``tree`` after builder ``b``; returns the builder of the last step added."""
    if isinstance(tree, Seq):
        for item in tree.items:
            b = _emit(b, item, root, in_saga)
        return b
    if isinstance(tree, Step):
        return _add_step(b, tree, in_saga)
    if isinstance(tree, If):
        cond = tree.condition
        return b.if_do(lambda data: cond, lambda nb: _emit(nb, tree.body, root, in_saga))
    if isinstance(tree, While):
        key, times = tree.label, tree.times

        def body(nb: Any) -> Any:
            # The counter comes first: a failed saga without a handler of its own ends
            # its block there (the steps after it are skipped), so a counter after it
            # would never run and the loop would never end.
            first = nb.then(lambda ctx: _count(ctx, key)).name(f"{key}-count")
            return _emit(first, tree.body, root, in_saga)

        # Counted per loop pointer: one loop may run in several concurrent branches.
        return b.while_do(lambda data, ctx: data["counters"].get(ctx.pointer.id, 0) < times, body)
    if isinstance(tree, ForEach):
        items = list(tree.items)
        return b.for_each(
            lambda data: items,
            lambda nb: _emit(nb, tree.body, root, in_saga),
            parallel=tree.parallel,
        )
    if isinstance(tree, Parallel):
        block = b.parallel()
        for branch in tree.branches:
            block = block.do(lambda nb, br=branch: _emit(nb, br, root, in_saga))
        return block.join()
    if isinstance(tree, Saga):
        return b.saga(lambda nb: _emit(nb, tree.body, root, True))
    if isinstance(tree, Decide):
        value = tree.value
        sb = b.decide(lambda data: value)
        for v, branch in enumerate(tree.branches):
            built = root.create_branch()
            _emit(built, branch, root, in_saga)
            sb.branch(v, built)
        return sb
    raise TypeError(tree)


def _count(ctx: Any, key: str) -> None:
    """One more iteration of the loop pointer enclosing this step (``scope[0]``), and of
    loop ``key`` in total (the total is what the stores must agree on)."""
    counters, loops = ctx.workflow.data["counters"], ctx.workflow.data["loops"]
    loop = ctx.pointer.scope[0]
    counters[loop] = counters.get(loop, 0) + 1
    loops[key] = loops.get(key, 0) + 1


def build(tree: Seq, definition_id: str) -> Any:
    """The definition of ``tree`` (default error behaviour: fast retries, one of them)."""
    root = WorkflowBuilder(dict)
    first = root.start_with(lambda ctx: _record(ctx, "start")).name("start")
    _emit(first, tree, root, False)
    return first.build(
        definition_id,
        1,
        default_error_behavior=ErrorBehavior.retry(timedelta(milliseconds=10), max_retries=1),
    )


def start_data() -> dict[str, Any]:
    return {"log": [], "loops": {}, "counters": {}}
