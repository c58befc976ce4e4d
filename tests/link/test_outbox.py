"""The outbox: priority, bulk limit, retries with backoff, overflow and persistence."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meterstack.link import (
    LinkDatabase,
    Message,
    MessageKind,
    Outbox,
    OutboxPolicy,
    Priority,
    ProfileBlock,
    encode,
)
from meterstack.link.module import profile_row
from meterstack.meter import Meter, MeterConfig

from .support import START, load


def outbox(
    policy: OutboxPolicy | None = None, path: str = ":memory:"
) -> tuple[Outbox, LinkDatabase]:
    database = LinkDatabase(path)
    return Outbox(database.for_meter("M1"), policy, rng=random.Random(1)), database


def test_alarm_goes_before_queued_bulk() -> None:
    box, _ = outbox(OutboxPolicy(max_in_flight_bulk=1000))
    box.enqueue([(Priority.POWER_QUALITY, False, 6, b"pq")] * 5, 0.0)
    box.enqueue([(Priority.PROFILE, False, 2, b"profile")] * 5, 0.0)
    box.enqueue([(Priority.REGISTER, True, 1, b"daily")], 0.0)
    box.enqueue([(Priority.ALARM, True, 4, b"alarm")], 0.0)
    order = []
    while (entry := box.next_due(1.0)) is not None:
        order.append(entry.priority)
        box.mark_sent(entry, 1.0)
    assert order == sorted(order)
    assert order[0] is Priority.ALARM
    assert order[-1] is Priority.POWER_QUALITY


def test_bulk_in_flight_limit_never_holds_an_alarm() -> None:
    box, _ = outbox(OutboxPolicy(max_in_flight_bulk=2))
    box.enqueue([(Priority.PROFILE, False, 2, b"p")] * 10, 0.0)
    for _ in range(2):
        entry = box.next_due(0.0)
        assert entry is not None
        box.mark_sent(entry, 0.0)
    assert box.next_due(0.0) is None
    box.enqueue([(Priority.ALARM, True, 4, b"a")], 0.0)
    alarm = box.next_due(0.0)
    assert alarm is not None
    assert alarm.priority is Priority.ALARM


def test_unacknowledged_entries_are_sent_again_with_backoff() -> None:
    box, _ = outbox(OutboxPolicy(ack_timeout_s=2.0, jitter=0.0, backoff_max_s=5.0))
    box.enqueue([(Priority.ALARM, True, 4, b"a")], 0.0)
    times = []
    now = 0.0
    while len(times) < 4:
        entry = box.next_due(now)
        if entry is not None:
            times.append(now)
            box.mark_sent(entry, now)
        now += 0.5
    assert times == [0.0, 2.0, 6.0, 11.0]  # waits 2, 4, then capped at 5
    assert box.acknowledge([1]) == 1
    assert box.next_due(100.0) is None


def test_failed_send_waits_backoff() -> None:
    box, _ = outbox(OutboxPolicy(backoff_base_s=1.0, jitter=0.0))
    box.enqueue([(Priority.ALARM, True, 4, b"a")], 0.0)
    entry = box.next_due(0.0)
    assert entry is not None
    box.mark_failed(entry, 0.0)
    assert box.next_due(0.9) is None
    assert box.next_due(1.0) is entry


def test_degraded_mode_sends_only_essential_entries() -> None:
    box, _ = outbox()
    box.enqueue([(Priority.PROFILE, False, 2, b"p"), (Priority.REGISTER, False, 1, b"r")], 0.0)
    assert box.next_due(0.0, essential_only=True) is None
    box.enqueue([(Priority.REGISTER, True, 1, b"daily")], 0.0)
    entry = box.next_due(0.0, essential_only=True)
    assert entry is not None
    assert entry.payload == b"daily"


def test_overflow_drops_oldest_bulk_first_and_never_alarms() -> None:
    box, _ = outbox(OutboxPolicy(capacity_bytes=100))
    box.enqueue([(Priority.ALARM, True, 4, b"a" * 10)], 0.0)
    box.enqueue([(Priority.PROFILE, False, 2, bytes([i]) * 10) for i in range(5)], 0.0)
    box.enqueue([(Priority.POWER_QUALITY, False, 6, b"q" * 10) for _ in range(4)], 0.0)
    assert box.bytes == 100
    box.enqueue([(Priority.PROFILE, False, 2, b"n" * 30)], 0.0)
    assert box.dropped == {Priority.POWER_QUALITY: 3}
    box.enqueue([(Priority.ALARM, True, 4, b"A" * 40)], 0.0)
    assert box.dropped[Priority.PROFILE] == 3
    assert box.dropped[Priority.POWER_QUALITY] == 4
    depth = box.depth()
    assert depth[Priority.ALARM] == 2
    assert depth[Priority.POWER_QUALITY] == 0
    remaining = [box.next_due(0.0, essential_only=False) for _ in range(1)]
    assert remaining[0] is not None
    assert remaining[0].priority is Priority.ALARM
    box.enqueue([(Priority.ALARM, True, 4, b"Z" * 500)], 0.0)  # alarms exceed capacity
    assert box.depth()[Priority.ALARM] == 3


@settings(max_examples=40)
@given(st.lists(st.tuples(st.sampled_from(list(Priority)), st.integers(1, 40)), max_size=60))
def test_overflow_never_loses_an_alarm_or_response(items: list[tuple[Priority, int]]) -> None:
    box, _ = outbox(OutboxPolicy(capacity_bytes=200))
    for priority, size in items:
        box.enqueue([(priority, priority <= Priority.RESPONSE, 1, b"x" * size)], 0.0)
    urgent = sum(1 for p, _ in items if p <= Priority.RESPONSE)
    depth = box.depth()
    assert depth[Priority.ALARM] + depth[Priority.RESPONSE] == urgent
    kept_bulk = sum(depth[p] for p in Priority if p > Priority.RESPONSE)
    assert kept_bulk + sum(box.dropped.values()) == len(items) - urgent


def test_sixty_days_of_half_hour_profile_fit_without_a_drop() -> None:
    meter = Meter(MeterConfig(serial="MS000001"), commissioned_at=START)
    at = START
    from datetime import timedelta

    for _ in range(60 * 48):
        at += timedelta(minutes=30)
        meter.step(load(at, 1234.5))
    box, _ = outbox()
    items = []
    for seq, entry in enumerate(meter.load_profile.entries(), start=1):
        body = ProfileBlock(1800, (profile_row(entry),))
        payload = encode(Message(MessageKind.PROFILE, "MS000001", box.origin, seq, 1, body))
        items.append((Priority.PROFILE, False, 2, payload))
    box.enqueue(items, 0.0)
    assert len(box) == 2880
    assert box.dropped == {}
    assert box.bytes < box.policy.capacity_bytes


def test_outbox_survives_a_restart(tmp_path: Path) -> None:
    path = str(tmp_path / "link.db")
    box, database = outbox(path=path)
    box.enqueue(
        [(Priority.PROFILE, False, 2, b"p1"), (Priority.ALARM, True, 4, b"a1")],
        0.0,
        values={"cursor.profile": 7},
    )
    box.acknowledge([1])
    origin = box.origin
    database.close()
    again, database = outbox(path=path)
    assert again.origin == origin
    assert len(again) == 1
    assert again.reserve_seq() == 3
    assert database.for_meter("M1").get_value("cursor.profile") == 7
    entry = again.next_due(0.0)
    assert entry is not None
    assert entry.payload == b"a1"


def test_bad_policy_and_payload_are_refused() -> None:
    with pytest.raises(ValueError, match="capacity_bytes"):
        OutboxPolicy(capacity_bytes=0)
    with pytest.raises(ValueError, match="jitter"):
        OutboxPolicy(jitter=2)
    box, _ = outbox()
    with pytest.raises(ValueError, match=r"items\[0\].payload"):
        box.enqueue([(Priority.ALARM, True, 4, "text")], 0.0)  # type: ignore[list-item]
