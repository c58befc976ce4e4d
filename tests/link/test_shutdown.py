"""Stopping tasks that swallow a cancellation, and transports that cannot reach a broker."""

from __future__ import annotations

import asyncio
import time

import pytest

from meterstack.link.shutdown import cancel_all, cancel_and_wait
from meterstack.link.transports import MqttTransport

from .support import free_port


async def _swallows_first_cancel(turns: list[int]) -> None:
    """A service loop whose first cancellation is lost, as aiomqtt's ``wait_for`` loses
    one on Python 3.11 when the awaited PUBACK lands in the same loop turn."""
    swallowed = False
    while True:
        try:
            await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            if swallowed:
                raise
            swallowed = True  # the loop carries on as if nothing happened
        turns.append(1)


async def test_cancel_and_wait_ends_a_task_that_swallows_a_cancellation() -> None:
    plain_turns: list[int] = []
    plain = asyncio.create_task(_swallows_first_cancel(plain_turns))
    turns: list[int] = []
    task = asyncio.create_task(_swallows_first_cancel(turns))
    await asyncio.sleep(0.03)
    plain.cancel()  # what a plain stop() did: the task swallows it and runs on
    done, _ = await asyncio.wait({plain}, timeout=0.1)
    assert not done
    async with asyncio.timeout(5):
        await cancel_and_wait(task, retry_s=0.05)  # its first cancel is swallowed too
    assert task.cancelled()
    after = len(turns)
    await asyncio.sleep(0.05)
    assert len(turns) == after  # really stopped
    await cancel_and_wait(plain)


async def test_cancel_all_and_finished_tasks() -> None:
    async def fails() -> None:
        raise ValueError("boom")

    turns: list[int] = []
    looping = asyncio.create_task(_swallows_first_cancel(turns))
    finished = asyncio.create_task(asyncio.sleep(0))
    await asyncio.sleep(0.02)
    async with asyncio.timeout(5):
        await cancel_all({looping, finished})
        await cancel_and_wait(None)
    assert looping.done()
    assert finished.done()
    failing = asyncio.create_task(fails())
    await asyncio.sleep(0)
    with pytest.raises(ValueError, match="boom"):
        await cancel_and_wait(failing)  # a real failure is not hidden


async def test_transport_stops_promptly_while_the_broker_is_unreachable() -> None:
    port = free_port()  # nothing listens there: the connection loop keeps retrying
    transport = MqttTransport(
        "127.0.0.1", port, client_id="lonely", reconnect_min_s=0.01, reconnect_max_s=0.02
    )
    transport.start()
    await asyncio.sleep(0.3)
    assert not transport.connected
    assert transport.errors  # it tried and recorded why it failed
    started = time.monotonic()
    async with asyncio.timeout(10):
        await transport.stop()
    assert time.monotonic() - started < 10
    assert transport.health.last_error == "stopped"
