"""Batched ingest: one transaction, one idempotency query and one window write per batch.

The batch path must keep every guarantee of the per-message one: a key applied once
whatever batch (or worker) it comes back in, a replayed frame a dead letter, windows that
read back the same whether a store writes them one by one or all at once.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from meterstack.core.time import SystemClock
from meterstack.headend import HeadEndStore
from meterstack.headend.ingest import IngestConfig, IngestWorker
from meterstack.link import provision
from meterstack.link.counters import ReplayGuard
from meterstack.link.envelope import seal
from meterstack.link.errors import RejectReason
from meterstack.link.keys import MeterCredentials
from meterstack.link.schema import (
    AlarmBody,
    Message,
    MessageKind,
    ProfileBlock,
    ProfileRow,
    encode,
)
from meterstack.link.store import LinkDatabase
from meterstack.link.transports import MqttTransport

from ..link.support import RecordingSink, wait_until

ORIGIN = 7


def profile_frame(credentials: MeterCredentials, seq: int, counter: int) -> tuple[str, bytes, str]:
    """A sealed one-interval PROFILE message ``seq`` under invocation counter ``counter``."""
    row = ProfileRow(seq, 1_704_067_200 + 1800 * seq, 100 * seq, 0, 5, 0, 23000, 15000, 0)
    message = Message(
        MessageKind.PROFILE,
        credentials.serial,
        ORIGIN,
        seq,
        1_704_067_200_000 + seq,
        ProfileBlock(1800, (row,)),
    )
    frame = seal(
        encode(message),
        credentials.keys,
        system_title=credentials.system_title,
        invocation_counter=counter,
    )
    return (f"meterstack/v1/{credentials.serial}/up/profile", frame, "primary")


def worker_for(tmp_path: Path, *serials: str) -> tuple[IngestWorker, RecordingSink, list[Any]]:
    store = HeadEndStore(tmp_path / "headend.db", os.urandom(16))
    fleet = [provision(serial) for serial in serials]
    for credentials in fleet:
        store.register_meter(credentials)
    sink = RecordingSink()
    return IngestWorker(store, sink, None, clock=SystemClock()), sink, fleet


def test_a_key_is_applied_once_within_and_across_batches(tmp_path: Path) -> None:
    worker, sink, (first, second) = worker_for(tmp_path, "MS0001", "MS0002")
    # seq 1-4 of both meters; seq 2 of the first meter sent again in the same batch (a
    # retransmission: sealed afresh, so under a new counter, not a replay).
    batch = [profile_frame(c, seq, seq) for c in (first, second) for seq in range(1, 5)]
    batch.append(profile_frame(first, 2, 5))
    acks = worker.process(batch)
    assert worker.stats.applied == 8
    assert worker.stats.duplicates == 1
    assert sink.profile_seqs("MS0001") == 4
    assert sink.profile_seqs("MS0002") == 4
    # Every key is acknowledged, the duplicate too (the meter must stop sending it).
    assert sorted(acks[("MS0001", "primary")]) == [(ORIGIN, s) for s in (1, 2, 2, 3, 4)]
    assert sorted(acks[("MS0002", "primary")]) == [(ORIGIN, s) for s in (1, 2, 3, 4)]

    # The next batch: seq 3 and 4 again (their ACK was lost) and the new seq 5.
    acks = worker.process([profile_frame(first, seq, 5 + seq) for seq in (3, 4, 5)])
    assert worker.stats.applied == 9
    assert worker.stats.duplicates == 3
    assert sink.profile_seqs("MS0001") == 5
    assert sorted(acks[("MS0001", "primary")]) == [(ORIGIN, s) for s in (3, 4, 5)]
    (rows,) = worker.store.query("SELECT COUNT(*) FROM applied")
    assert rows[0] == 9
    assert not sink.duplicates  # no row reached the sink twice


def test_a_replayed_frame_in_a_batch_is_a_dead_letter(tmp_path: Path) -> None:
    worker, sink, (meter,) = worker_for(tmp_path, "MS0001")
    frames = [profile_frame(meter, seq, seq) for seq in range(1, 4)]
    worker.process([*frames, frames[1]])  # byte-identical copy in the same batch
    worker.process([frames[0]])  # and one in a later batch
    assert worker.stats.applied == 3
    assert worker.stats.rejected == {RejectReason.REPLAY.value: 2}
    letters = worker.store.dead_letters()
    assert [letter.frame for letter in letters] == [frames[1][1], frames[0][1]]
    assert sink.profile_seqs("MS0001") == 3


def test_windows_written_at_once_read_back_as_one_by_one(tmp_path: Path) -> None:
    """``load``/``persist_all`` (one query, one statement on a store that offers them)
    keep the RFC 4303 window semantics of ``accept``/``persist`` per sender."""
    bulk_store = HeadEndStore(tmp_path / "bulk.db", os.urandom(16))
    single_store = LinkDatabase(tmp_path / "link.db").for_meter("MS0001")  # no bulk methods
    senders = [bytes([i]) * 8 for i in range(1, 4)]
    accepted = {senders[0]: [1, 2, 5], senders[1]: [1500], senders[2]: [10, 9, 3000]}
    for store in (bulk_store, single_store):
        guard = ReplayGuard(store, size=1024)
        guard.load(senders)
        for sender, counters in accepted.items():
            for counter in counters:
                guard.accept(sender, counter, persist=False)
        guard.persist_all(senders)
        fresh = ReplayGuard(store, size=1024)
        fresh.load(senders)
        # Accepted counters are replays; gaps inside the window are not; anything more
        # than 1024 below the top is.
        assert fresh.seen(senders[0], 5)
        assert fresh.seen(senders[0], 1)
        assert not fresh.seen(senders[0], 3)
        assert not fresh.seen(senders[0], 6)
        assert fresh.seen(senders[1], 1500)
        assert fresh.seen(senders[1], 476)
        assert not fresh.seen(senders[1], 477)
        assert not fresh.seen(senders[1], 1501)
        assert fresh.seen(senders[2], 3000)
        assert fresh.seen(senders[2], 10)
        assert not fresh.seen(senders[2], 2999)
        assert not fresh.seen(b"\x09" * 8, 1)  # a sender never heard of
    assert bulk_store.load_windows(senders[:2]) == {
        senders[0]: (5, 0b11001),  # 5, 2 and 1: bits 0, 3 and 4
        senders[1]: (1500, 1),
    }


async def test_transport_hands_over_in_order_and_outlives_a_failing_handler(
    mosquitto: Any,
) -> None:
    """Messages reach a synchronous handler as they arrive and an asynchronous one in
    order; a handler that raises is counted and the next messages still arrive."""
    got_sync: list[bytes] = []
    got_async: list[bytes] = []

    def on_sync(topic: str, payload: bytes, path: str) -> None:
        if payload == b"7":
            raise ValueError("handler bug (test)")
        got_sync.append(payload)

    async def on_async(topic: str, payload: bytes, path: str) -> None:
        await asyncio.sleep(0.001 if int(payload) % 2 else 0)
        if payload == b"3":
            raise ValueError("handler bug (test)")
        got_async.append(payload)

    port = mosquitto.port
    subscribers = [
        MqttTransport("127.0.0.1", port, client_id=f"sub-{n}", subscriptions=["t/x"])
        for n in ("sync", "async")
    ]
    subscribers[0].on_message = on_sync
    subscribers[1].on_message = on_async
    publisher = MqttTransport("127.0.0.1", port, client_id="pub")
    for transport in (*subscribers, publisher):
        transport.start()
        assert await transport.wait_connected(5)
    try:
        for n in range(20):
            await publisher.publish("t/x", str(n).encode())
        assert await wait_until(lambda: len(got_sync) == 19 and len(got_async) == 19, 10)
    finally:
        for transport in (*subscribers, publisher):
            await transport.stop()
    assert got_sync == [str(n).encode() for n in range(20) if n != 7]
    assert got_async == [str(n).encode() for n in range(20) if n != 3]
    assert [s.handler_errors for s in subscribers] == [1, 1]
    assert all(any("handler bug" in e for e in s.errors) for s in subscribers)


def alarm_frame(credentials: MeterCredentials, seq: int, counter: int) -> tuple[str, bytes, str]:
    message = Message(
        MessageKind.ALARM,
        credentials.serial,
        ORIGIN,
        seq,
        1_704_067_200_000 + seq,
        AlarmBody(1_704_067_200_000, 1, "terminal cover opened"),
    )
    frame = seal(
        encode(message),
        credentials.keys,
        system_title=credentials.system_title,
        invocation_counter=counter,
    )
    return (f"meterstack/v1/{credentials.serial}/up/alarm", frame, "primary")


async def test_an_alarm_overtakes_a_bulk_batch_being_opened(tmp_path: Path) -> None:
    # 1000 profile frames in one batch take many milliseconds to open; an alarm arriving
    # once the batch has started is applied (and handed to the alarm handler) before the
    # batch reaches the sink, and the batch is still applied whole, exactly once. (No
    # partial-batch wait: the bulk task starts opening at once.)
    store = HeadEndStore(tmp_path / "headend.db", os.urandom(16))
    credentials = provision("MS0001")
    store.register_meter(credentials)
    order: list[str] = []

    class OrderSink(RecordingSink):
        def ingest_intervals(self, batch: Any) -> Any:
            order.append(f"profile x{batch.num_rows // 6}")
            return super().ingest_intervals(batch)

    sink = OrderSink()
    worker = IngestWorker(
        store,
        sink,
        None,
        clock=SystemClock(),
        config=IngestConfig(max_batch=1000, max_wait_s=0.0),
        on_alarm=lambda notice: order.append(f"alarm {notice.detail}"),
    )
    for seq in range(1, 1001):
        worker.on_message(*profile_frame(credentials, seq, seq))
    worker.start()
    try:
        await asyncio.sleep(0)  # the bulk task takes its batch and starts opening it
        assert order == []
        worker.on_message(*alarm_frame(credentials, 1001, 1001))
        assert await wait_until(lambda: len(order) == 2, 30)
    finally:
        await worker.stop()
        store.close()
    assert order == ["alarm terminal cover opened", "profile x1000"]
    assert worker.stats.applied == 1001
    assert sink.profile_seqs("MS0001") == 1000
