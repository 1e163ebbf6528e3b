"""The smallest wfe program: a three-step workflow that waits for an event, in code.

    python examples/hello.py [--store sqlite:///hello.db]

Runs on the in-memory store by default; pass a store URL to keep the state.
"""

from __future__ import annotations

import argparse
from typing import Any

import trio

from wfe.core import StepExecutionContext, WorkflowBuilder, WorkflowDefinition, WorkflowStatus
from wfe.host import WorkflowHostBuilder


def greet(ctx: StepExecutionContext) -> None:
    print(f"hello, {ctx.workflow.data['name']}")


def definition() -> WorkflowDefinition:
    return (
        WorkflowBuilder(dict)
        .start_with(greet)
        .name("Greet")
        .wait_for("reply", lambda data, ctx: ctx.workflow.id)
        .name("Await reply")
        .output("reply", lambda step: step.event_data)
        .then(lambda ctx: print(f"they said: {ctx.workflow.data['reply']}"))
        .name("Print reply")
        .build("hello", 1)
    )


async def main(store: str) -> int:
    async with WorkflowHostBuilder().persistence(store).register(definition()).build() as host:
        wid = await host.start_workflow("hello", 1, {"name": "world"})
        await host.publish_event("reply", wid, "hi back")
        done = await host.wait_for_workflow(wid, timeout=30)
    data: dict[str, Any] = done.data
    print(f"workflow {wid} {done.status.value}: {data}")
    return 0 if done.status is WorkflowStatus.COMPLETE else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", default="memory://")
    raise SystemExit(trio.run(main, parser.parse_args().store))
