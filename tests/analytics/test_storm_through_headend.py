"""A last-gasp storm through real Mosquitto into the head-end, then outage grouping.

Scaled to CI: 2,000 meters on transformers of 10-30 customers; the meters of 20 % of the
transformers send a sealed last gasp within 2 s, a tenth of them twice (a resend after
failover: the same idempotency key under a new invocation counter). Every alarm must reach
the head-end's alarm handler exactly once, and the outages found from what the head-end
recorded must be one per affected transformer. The 100,000-meter storm runs on the
analytics alone in test_outages.py.
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as paho

from meterstack.analytics import (
    NetworkModel,
    OutageLevel,
    PowerEventKind,
    PowerEvents,
    find_outages,
)
from meterstack.headend import BrokerPath, HeadEnd, HeadEndStore
from meterstack.link import provision, topics
from meterstack.link.envelope import seal
from meterstack.link.schema import AlarmBody, Message, MessageKind, encode
from meterstack.meter import EventCode

from ..link.support import RecordingSink, mosquitto

__all__ = ["mosquitto"]

T0_MS = 1_790_000_000_000


def _network(rng: np.random.Generator, n_meters: int) -> NetworkModel:
    sizes = rng.integers(10, 31, n_meters // 10)
    sizes = sizes[np.cumsum(sizes) <= n_meters]
    sizes = np.append(sizes, n_meters - sizes.sum())
    assignment = np.repeat(np.arange(sizes.size), sizes).astype(np.int32)
    return NetworkModel(
        meters=tuple(f"ST{i:05d}" for i in range(n_meters)),
        transformers=tuple(f"T{t:03d}" for t in range(sizes.size)),
        feeders=("F0",),
        meter_transformer=assignment,
        transformer_feeder=np.zeros(sizes.size, dtype=np.int32),
        rating_kva=np.full(sizes.size, np.nan),
        check_meters=tuple(None for _ in range(sizes.size)),
    )


def _publish(port: int, frames: list[tuple[str, bytes]]) -> None:
    acked = 0
    done = threading.Event()

    def on_publish(*_: Any) -> None:
        nonlocal acked
        acked += 1
        if acked == len(frames):
            done.set()

    client = paho.Client(
        paho.CallbackAPIVersion.VERSION2, client_id="storm-publisher", protocol=paho.MQTTv5
    )
    client.max_inflight_messages_set(256)
    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        for topic, frame in frames:
            client.publish(topic, frame, qos=1)
        assert done.wait(60), f"only {acked} of {len(frames)} publishes acknowledged"
    finally:
        client.disconnect()
        client.loop_stop()


async def test_storm_reaches_the_headend_once_and_groups_by_transformer(
    tmp_path: Path, mosquitto: Any
) -> None:
    rng = np.random.default_rng(20)
    network = _network(rng, 2000)
    out = rng.choice(network.n_transformers, size=network.n_transformers // 5, replace=False)
    meters = np.concatenate([network.meters_of(int(t)) for t in out])
    store = HeadEndStore(tmp_path / "headend.db", os.urandom(16))
    frames: list[tuple[str, bytes]] = []
    gasp_ms = T0_MS + rng.integers(0, 2000, meters.size)
    resent = rng.random(meters.size) < 0.1
    for meter, at_ms, twice in zip(meters.tolist(), gasp_ms.tolist(), resent, strict=True):
        serial = network.meters[meter]
        credentials = provision(serial)
        store.register_meter(credentials)
        message = Message(
            MessageKind.ALARM,
            serial,
            1,
            1,
            at_ms,
            AlarmBody(at_ms, int(EventCode.POWER_DOWN), "last gasp"),
        )
        topic = topics.uplink(serial, MessageKind.ALARM)
        for counter in (1, 2) if twice else (1,):
            frames.append(
                (
                    topic,
                    seal(
                        encode(message),
                        credentials.keys,
                        system_title=credentials.system_title,
                        invocation_counter=counter,
                    ),
                )
            )
    order = rng.permutation(len(frames))
    frames = [frames[i] for i in order]

    headend = HeadEnd(store, RecordingSink(), [BrokerPath("primary", "127.0.0.1", mosquitto.port)])
    async with headend:
        await asyncio.to_thread(_publish, mosquitto.port, frames)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while len(headend.alarms) < meters.size and loop.time() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # a duplicate applied late would show now

    # Every last gasp once: no alarm lost, every resend recognised.
    received = [notice.meter for notice in headend.alarms]
    assert len(received) == meters.size
    assert sorted(received) == sorted(network.meters[m] for m in meters)
    assert len(store.alarms()) == meters.size

    events = PowerEvents.from_records(
        network,
        [(n.meter, n.at_ms / 1000, PowerEventKind.LAST_GASP) for n in headend.alarms],
    )
    report = find_outages(network, events, as_of=T0_MS / 1000 + 600)
    assert all(o.level is OutageLevel.TRANSFORMER for o in report.outages)
    assert sorted(o.transformer for o in report.outages) == sorted(out.tolist())
    counted = np.sort(np.concatenate([o.meters for o in report.outages]))
    assert np.array_equal(counted, np.sort(meters))
