"""The head-end writes into the real interval stores: simulated meters publish through a
real Mosquitto, the head-end ingests, and the DuckDB or PostgreSQL store holds every
load-profile interval and event exactly as the meter recorded it (the meter model is the
reference), with nothing duplicated when the batch is sent again."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from meterstack.headend import BrokerPath, HeadEnd, HeadEndStore
from meterstack.link import LinkDatabase
from meterstack.link.shutdown import cancel_all
from meterstack.mdm.intervals import IntervalStore, MeterRegistration
from tests.link.support import SimMeter, make_meter, meter_transport, mosquitto, wait_until

__all__ = ["mosquitto"]

A_PLUS = "1.0.1.8.0.255"
EVER = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


async def test_ingested_readings_land_in_the_store(
    tmp_path: Path, mosquitto: Any, store: IntervalStore
) -> None:
    headend_store = HeadEndStore(tmp_path / "headend.db", os.urandom(16))
    database = LinkDatabase(tmp_path / "link.db", synchronous="NORMAL")
    meters: list[SimMeter] = []
    for index in range(2):
        serial = f"MD{index:04d}"
        transport = meter_transport(mosquitto, serial)
        sim = make_meter(serial, database=database, transport=transport)
        transport.on_message = sim.module.receive
        headend_store.register_meter(sim.credentials)
        store.register_meters([MeterRegistration(serial, 1800)])
        meters.append(sim)
    headend = HeadEnd(headend_store, store, [BrokerPath("primary", "127.0.0.1", mosquitto.port)])
    async with headend:
        for sim in meters:
            sim.module.transport.start()  # type: ignore[attr-defined]
            await sim.module.transport.wait_connected(5)  # type: ignore[attr-defined]
            sim.tasks.append(asyncio.create_task(sim.module.run()))
        for sim in meters:
            sim.step(24)
            sim.step(1, terminal_cover_open=True)
            sim.step(23)

        def drained() -> bool:
            return all(len(sim.module.outbox) == 0 for sim in meters)

        assert await wait_until(drained, 30), [len(s.module.outbox) for s in meters]
        for sim in meters:
            await cancel_all(sim.tasks)
            await sim.module.stop()
            await sim.module.transport.stop()  # type: ignore[attr-defined]
    for sim in meters:
        serial = sim.meter.config.serial
        profile = sim.meter.load_profile.entries()
        assert len(profile) == 48
        stored = store.read_intervals(*EVER, [serial], [A_PLUS])
        got = dict(
            zip(
                (int(e.timestamp()) for e in stored.column("interval_end").to_pylist()),
                stored.column("value").to_pylist(),
                strict=True,
            )
        )
        assert got == {round(e.interval_end): float(e.a_plus_wh) for e in profile}
        assert set(stored.column("revision").to_pylist()) == {0}
        events = store.read_events(*EVER, [serial])
        logged = {
            (kind.value, event.seq, event.code)
            for kind, log in sim.meter.event_logs.items()
            for event in log
        }
        assert logged
        assert (
            set(
                zip(
                    events.column("log").to_pylist(),
                    events.column("seq").to_pylist(),
                    events.column("code").to_pylist(),
                    strict=True,
                )
            )
            == logged
        )
