"""Meters through a real Mosquitto into the head-end: nothing lost, nothing duplicated."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from meterstack.headend import BrokerPath, HeadEnd, HeadEndStore
from meterstack.link import LinkDatabase
from meterstack.link.shutdown import cancel_all

from ..link.support import (
    RecordingSink,
    SimMeter,
    make_meter,
    meter_transport,
    wait_until,
)


class Fleet:
    def __init__(self, tmp_path: Path, broker: Any, count: int, **kw: Any) -> None:
        self.master_key = os.urandom(16)
        self.store = HeadEndStore(tmp_path / "headend.db", self.master_key)
        self.sink = RecordingSink()
        self.database = LinkDatabase(tmp_path / "link.db", synchronous="NORMAL")
        self.meters: list[SimMeter] = []
        for index in range(count):
            serial = f"MS{index:04d}"
            transport = meter_transport(broker, serial)
            sim = make_meter(serial, database=self.database, transport=transport, **kw)
            transport.on_message = sim.module.receive
            self.store.register_meter(sim.credentials)
            self.meters.append(sim)

    async def start(self) -> None:
        for sim in self.meters:
            transport = sim.module.transport
            transport.start()  # type: ignore[attr-defined]
            await transport.wait_connected(5)  # type: ignore[attr-defined]
            sim.tasks.append(asyncio.create_task(sim.module.run()))

    async def stop(self) -> None:
        for sim in self.meters:
            await cancel_all(sim.tasks)
            await sim.module.stop()
            await sim.module.transport.stop()  # type: ignore[attr-defined]

    def drained(self) -> bool:
        return all(len(sim.module.outbox) == 0 for sim in self.meters)


async def test_profile_events_and_alarms_arrive_once(tmp_path: Path, mosquitto: Any) -> None:
    fleet = Fleet(tmp_path, mosquitto, 3)
    headend = HeadEnd(
        fleet.store, fleet.sink, [BrokerPath("primary", "127.0.0.1", mosquitto.port)], workers=2
    )
    async with headend:
        await fleet.start()
        for sim in fleet.meters:
            sim.step(48)
            sim.step(1, terminal_cover_open=True)  # an alarm
            sim.step(47)
        assert await wait_until(fleet.drained, 20), [len(s.module.outbox) for s in fleet.meters]
        await fleet.stop()
    for sim in fleet.meters:
        serial = sim.meter.config.serial
        profile = sim.meter.load_profile.entries()
        assert fleet.sink.profile_seqs(serial) == len(profile) == 96
        for entry in profile:
            key = (serial, "1.0.1.8.0.255", round(entry.interval_end))
            assert fleet.sink.intervals[key] == entry.a_plus_wh
        for kind, log in sim.meter.event_logs.items():
            for event in log:
                stored = fleet.sink.events[(serial, kind.value, event.seq)]
                assert stored == (round(event.at * 1000), event.code, event.detail)
    assert sum(fleet.sink.duplicates.values()) == 0
    assert sum(fleet.sink.revisions.values()) == 0
    codes = sorted((a.meter, a.code) for a in headend.alarms)
    assert codes == [(f"MS{i:04d}", 40) for i in range(3)]
    assert len(fleet.store.alarms()) == 3


async def test_two_headend_processes_split_one_shared_subscription(
    tmp_path: Path, mosquitto: Any
) -> None:
    """Two head-end instances (as two processes would be: their own database connection,
    system title and MQTT clients) in one shared-subscription group split the stream; each
    message is applied once."""
    fleet = Fleet(tmp_path, mosquitto, 4)
    second_store = HeadEndStore(tmp_path / "headend.db", fleet.master_key)
    path = [BrokerPath("primary", "127.0.0.1", mosquitto.port)]
    first = HeadEnd(fleet.store, fleet.sink, path, instance=1)
    second = HeadEnd(second_store, fleet.sink, path, instance=2)
    async with first, second:
        await fleet.start()
        for sim in fleet.meters:
            sim.step(60)
        assert await wait_until(fleet.drained, 30), [len(s.module.outbox) for s in fleet.meters]
        await fleet.stop()
    applied = [sum(w.stats.applied for w in h.workers) for h in (first, second)]
    assert all(count > 0 for count in applied), applied  # both took a share
    for sim in fleet.meters:
        serial = sim.meter.config.serial
        assert fleet.sink.profile_seqs(serial) == 60
    assert sum(fleet.sink.duplicates.values()) == 0
    assert sum(fleet.sink.revisions.values()) == 0


async def test_a_failing_sink_or_alarm_handler_loses_nothing(
    tmp_path: Path, mosquitto: Any
) -> None:
    """The sink refuses two batches (rolled back, not acknowledged, sent again) and the
    alarm handler raises: every reading still arrives once and ingest keeps going."""
    fleet = Fleet(tmp_path, mosquitto, 2)
    fleet.sink.fail_next = 2

    def broken_handler(notice: Any) -> None:
        raise RuntimeError("the alarm handler has a bug")

    headend = HeadEnd(
        fleet.store,
        fleet.sink,
        [BrokerPath("primary", "127.0.0.1", mosquitto.port)],
        on_alarm=broken_handler,
    )
    async with headend:
        await fleet.start()
        for sim in fleet.meters:
            sim.step(10)
            sim.step(1, terminal_cover_open=True)
            sim.step(10)
        assert await wait_until(fleet.drained, 30), [len(s.module.outbox) for s in fleet.meters]
        await fleet.stop()
    stats = [worker.stats for worker in headend.workers]
    assert sum(s.failed_batches for s in stats) == 2
    assert sum(s.handler_errors for s in stats) == 2
    assert fleet.sink.fail_next == 0
    for sim in fleet.meters:
        assert fleet.sink.profile_seqs(sim.meter.config.serial) == 21
    assert sum(fleet.sink.duplicates.values()) == 0
    assert len(fleet.store.alarms()) == 2  # stored although the handler failed
    assert len(headend.alarms) == 2
