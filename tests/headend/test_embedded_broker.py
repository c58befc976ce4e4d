"""The demo path: a meter through the in-process amqtt broker (MQTT 3.1.1) to the head-end."""

from __future__ import annotations

import asyncio
from pathlib import Path

from meterstack.headend import BrokerPath, EmbeddedBroker, HeadEnd
from meterstack.link.shutdown import cancel_and_wait

from ..link.support import make_meter, meter_transport, wait_until
from .test_end_to_end import Fleet


async def test_meter_through_the_embedded_broker(tmp_path: Path) -> None:
    async with EmbeddedBroker() as broker:
        fleet = Fleet(tmp_path, broker, 0)
        transport = meter_transport(broker, "EMB01", protocol=4)  # type: ignore[arg-type]
        sim = make_meter("EMB01", database=fleet.database, transport=transport)
        transport.on_message = sim.module.receive
        fleet.store.register_meter(sim.credentials)
        headend = HeadEnd(
            fleet.store, fleet.sink, [BrokerPath("embedded", "127.0.0.1", broker.port, protocol=4)]
        )
        async with headend:
            transport.start()
            assert await transport.wait_connected(5)
            task = asyncio.create_task(sim.module.run())
            sim.step(6)
            sim.step(1, terminal_cover_open=True)
            assert await wait_until(lambda: len(sim.module.outbox) == 0, 15)
            await cancel_and_wait(task)
            await sim.module.stop()
            await transport.stop()
        assert fleet.sink.profile_seqs("EMB01") == 7
        assert [a.code for a in headend.alarms] == [40]
