"""A pizza order's journey through wfe — every builder verb in one realistic workflow.

    python examples/pizza.py [--store sqlite:///pizza.db]

The order is validated, paid for inside a saga (a failing oven booking compensates the
charge), waits for the customer's confirmation event, prepares every pizza in parallel,
bakes in rounds, polls the courier with recur/schedule, hands the delivery to a
sub-workflow, and ends the workflow early for a cancelled order.
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from decimal import Decimal

import attrs
import trio

from wfe.core import (
    ErrorBehavior,
    ExecutionResult,
    StepBody,
    StepError,
    StepExecutionContext,
    WorkflowBuilder,
    WorkflowStatus,
)
from wfe.host import WorkflowHostBuilder


@attrs.define
class Order:
    """The workflow data: one order."""

    customer: str = ""
    pizzas: list[str] = attrs.Factory(list)
    total: Decimal = Decimal("0")
    charged: Decimal = Decimal("0")
    confirmed: bool = False
    cancelled: bool = False
    size: str = "regular"
    baked_rounds: int = 0
    courier_checks: int = 0
    delivery_status: str = ""
    journey: list[str] = attrs.Factory(list)


def say(ctx: StepExecutionContext, line: str) -> None:
    ctx.workflow.data.journey.append(line)
    print(f"  {ctx.workflow.reference or ctx.workflow.id[:8]}: {line}")


class Charge(StepBody):
    """Charges the card (a StepBody with inputs and outputs)."""

    amount: Decimal = Decimal("0")
    receipt: str = ""

    async def run(self, ctx: StepExecutionContext) -> ExecutionResult:
        say(ctx, f"charged {self.amount}")
        self.receipt = f"r-{ctx.workflow.id[:6]}"
        return ExecutionResult.next()


_oven_attempts: dict[str, int] = {}


def book_oven(ctx: StepExecutionContext) -> None:
    """The first booking attempt of each order fails: the saga compensates and retries."""
    attempt = _oven_attempts.get(ctx.workflow.id, 0) + 1
    _oven_attempts[ctx.workflow.id] = attempt
    if attempt == 1:
        say(ctx, "oven fully booked")
        raise StepError("oven fully booked")
    say(ctx, "oven booked")


def refund(ctx: StepExecutionContext) -> None:
    say(ctx, f"refunded {ctx.workflow.data.charged}")
    ctx.workflow.data.charged = Decimal("0")


def delivery_definition() -> object:
    """The delivery sub-workflow: drive, then hand over."""
    return (
        WorkflowBuilder(dict)
        .start_with(lambda ctx: ctx.workflow.data.update(leg="driving"))
        .delay(timedelta(milliseconds=50))
        .then(lambda ctx: ctx.workflow.data.update(leg="delivered"))
        .build("pizza-delivery", 1)
    )


def order_definition() -> object:
    builder = WorkflowBuilder(Order)

    large = builder.create_branch()
    large.start_with(lambda ctx: say(ctx, "large order: extra driver"))
    regular = builder.create_branch()
    regular.start_with(lambda ctx: say(ctx, "regular order"))

    return (
        builder.start_with(lambda ctx: say(ctx, f"order from {ctx.workflow.data.customer}"))
        .name("Receive order")
        .then_fn(lambda ctx: ExecutionResult.outcome(len(ctx.workflow.data.pizzas)))
        .name("Count pizzas")
        .when(0)
        .do(lambda b: b.start_with(lambda ctx: say(ctx, "empty order")).end_workflow())
        .when(lambda data: len(data.pizzas))
        .do(lambda b: b.start_with(lambda ctx: say(ctx, f"{len(ctx.workflow.data.pizzas)} pizzas")))
        .if_do(
            lambda data: data.cancelled,
            lambda b: b.start_with(lambda ctx: say(ctx, "cancelled by customer")).end_workflow(),
        )
        .saga(
            lambda s: (
                s.start_with(Charge)
                .name("Charge card")
                .input("amount", lambda data: data.total)
                .output("charged", lambda step: step.amount)
                .compensate_with(refund)
                .then(book_oven)
                .name("Book oven")
                .compensate_with_sequence(
                    lambda c: c.start_with(lambda ctx: say(ctx, "release oven slot")).then(
                        lambda ctx: say(ctx, "notify kitchen")
                    )
                )
            )
        )
        .on_error(ErrorBehavior.retry(timedelta(milliseconds=50), max_retries=3))
        .wait_for("confirmed", lambda data, ctx: ctx.workflow.id)
        .name("Await confirmation")
        .output("confirmed", lambda step: bool(step.event_data))
        .cancel_condition(lambda data: data.cancelled, proceed=True)
        .for_each(
            lambda data: data.pizzas,
            lambda b: b.start_with(lambda ctx: say(ctx, f"topping {ctx.item}")),
        )
        .parallel()
        .do(lambda b: b.start_with(lambda ctx: say(ctx, "salad prepared")))
        .do(lambda b: b.start_with(lambda ctx: say(ctx, "drinks chilled")))
        .join()
        .while_do(
            lambda data: data.baked_rounds < 2,
            lambda b: (
                b.start_with(
                    lambda ctx: say(ctx, f"bake round {ctx.workflow.data.baked_rounds + 1}")
                )
                .output(lambda step, data: setattr(data, "baked_rounds", data.baked_rounds + 1))
                .delay(timedelta(milliseconds=20))
            ),
        )
        .for_each(
            lambda data: ["box", "label"],
            lambda b: b.start_with(lambda ctx: say(ctx, f"pack: {ctx.item}")),
            parallel=False,
        )
        .decide(lambda data: "large" if len(data.pizzas) > 2 else "regular")
        .branch("large", large)
        .branch("regular", regular)
        .then(lambda ctx: None)
        .id("courier")
        .recur(timedelta(milliseconds=30), lambda data: data.courier_checks >= 2)
        .do(
            lambda b: b.start_with(
                lambda ctx: say(ctx, f"courier check {ctx.workflow.data.courier_checks + 1}")
            ).output(lambda step, data: setattr(data, "courier_checks", data.courier_checks + 1))
        )
        .schedule(timedelta(milliseconds=30))
        .do(lambda b: b.start_with(lambda ctx: say(ctx, "courier arrived")))
        .sub_workflow("pizza-delivery", 1, data=lambda data: {"to": data.customer})
        .output("delivery_status", lambda step: step.child_data["leg"])
        .if_do(
            lambda data: data.delivery_status != "delivered",
            lambda b: b.start_with(lambda ctx: say(ctx, "retry courier")).attach("courier"),
        )
        .then(lambda ctx: say(ctx, f"delivered, receipt total {ctx.workflow.data.charged}"))
        .end_workflow()
        .then(lambda ctx: say(ctx, "never printed"))
        .build("pizza-order", 1)
    )


async def main(store: str) -> int:
    async with (
        WorkflowHostBuilder()
        .persistence(store)
        .register(order_definition())
        .register(delivery_definition())
        .build()
    ) as host:
        order = Order(
            customer="Ada", pizzas=["margherita", "diavola", "funghi"], total=Decimal("31.50")
        )
        wid = await host.start_workflow("pizza-order", 1, order, reference="order-17")
        await host.publish_event("confirmed", wid, True)
        done = await host.wait_for_workflow(wid, timeout=60)
        errors = await host.get_errors(wid)
    ok = done.status is WorkflowStatus.COMPLETE and "never printed" not in done.data.journey
    stops = len(done.data.journey)
    print(f"order-17 {done.status.value}: {stops} stops, {len(errors)} handled error(s)")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", default="memory://")
    raise SystemExit(trio.run(main, parser.parse_args().store))
