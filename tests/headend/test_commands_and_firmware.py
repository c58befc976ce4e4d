"""Commands, diagnostics and firmware campaigns through a real Mosquitto."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from meterstack.headend import (
    BrokerPath,
    CampaignState,
    CommandState,
    FirmwareCampaign,
    HeadEnd,
    headend_view,
    remote_diagnostics,
)
from meterstack.link import FirmwareSlot, RejectReason, SecuritySuite, sign_image
from meterstack.meter import ControlState

from ..link.support import (
    make_meter,
    meter_transport,
)
from .test_end_to_end import Fleet

VENDOR = ec.generate_private_key(ec.SECP256R1())


def _fleet_with_firmware(tmp_path: Path, broker: Any, serials: list[str], **kw: Any) -> Fleet:
    fleet = Fleet(tmp_path, broker, 0)
    for serial in serials:
        transport = meter_transport(broker, serial)
        store = fleet.database.for_meter(serial)
        firmware = FirmwareSlot(
            store,
            VENDOR.public_key(),
            self_test=(lambda v, image: not image.startswith(b"BROKEN")),
        )
        sim = make_meter(
            serial, database=fleet.database, transport=transport, firmware=firmware, **kw
        )
        transport.on_message = sim.module.receive
        fleet.store.register_meter(sim.credentials)
        fleet.meters.append(sim)
    return fleet


@pytest.mark.parametrize(
    "suite",
    [SecuritySuite.AES_128_GCM, SecuritySuite.AES_256_GCM_ECDSA_P384, SecuritySuite.SM4_GCM],
)
async def test_commands_reach_the_meter_once(
    tmp_path: Path, mosquitto: Any, suite: SecuritySuite
) -> None:
    headend_key = ec.generate_private_key(ec.SECP384R1())
    fleet = Fleet(tmp_path, mosquitto, 1, suite=suite, headend_signing_key=headend_key)
    sim = fleet.meters[0]
    serial = sim.meter.config.serial
    headend = HeadEnd(
        fleet.store,
        fleet.sink,
        [BrokerPath("primary", "127.0.0.1", mosquitto.port)],
        signing_key=headend_key if suite.signed else None,
    )
    async with headend:
        await fleet.start()
        sim.step(2)
        record = await headend.command(serial, "remote_disconnect", timeout=10, timeout_s=2)
        assert record.state is CommandState.ACKNOWLEDGED, record
        assert sim.meter.relay.state is ControlState.DISCONNECTED
        record = await headend.command(serial, "remote_reconnect", timeout=10, timeout_s=2)
        assert record.state is CommandState.ACKNOWLEDGED
        # control mode 5: a remote reconnect arms the relay for the customer (transition d)
        assert sim.meter.relay.state is ControlState.READY_FOR_RECONNECTION
        refused = await headend.command(serial, "top_up", {"amount": "5"}, timeout=10, timeout_s=2)
        assert refused.state is CommandState.FAILED
        assert "not a prepaid meter" in str(refused.detail)
        read = await headend.command(serial, "read_registers", timeout=10, timeout_s=2)
        assert read.state is CommandState.ACKNOWLEDGED
        assert (serial, "1.0.1.8.0.255", read.result["at_ms"]) in fleet.sink.registers
        diagnostics = await remote_diagnostics(headend, serial, timeout=10)
        assert diagnostics.key_id == 1
        assert "depth" in diagnostics.outbox
        view = headend_view(headend, serial)
        assert view["last_path"] == "primary"
        assert view["commands"]["failed"] == 1
        await fleet.stop()
    assert sim.module.commands_executed == 5


async def test_command_to_an_absent_meter_fails_then_expires(
    tmp_path: Path, mosquitto: Any
) -> None:
    fleet = Fleet(tmp_path, mosquitto, 1)
    serial = fleet.meters[0].meter.config.serial
    headend = HeadEnd(fleet.store, fleet.sink, [BrokerPath("primary", "127.0.0.1", mosquitto.port)])
    async with headend:  # the meter never connects
        failed = await headend.command(
            serial, "billing_reset", timeout=5, timeout_s=0.2, max_attempts=2
        )
        assert failed.state is CommandState.FAILED
        assert failed.attempts == 2
        expired = await headend.command(serial, "billing_reset", timeout=5, timeout_s=5, ttl_s=0.3)
        assert expired.state is CommandState.EXPIRED
    with pytest.raises(ValueError, match="name"):
        headend.commands.submit(serial, "format_disk")
    with pytest.raises(ValueError, match="meter"):
        headend.commands.submit("NOBODY", "billing_reset")


async def test_firmware_campaign_good_bad_and_rolled_back(tmp_path: Path, mosquitto: Any) -> None:
    fleet = _fleet_with_firmware(tmp_path, mosquitto, ["FW01", "FW02"])
    headend = HeadEnd(fleet.store, fleet.sink, [BrokerPath("primary", "127.0.0.1", mosquitto.port)])
    image = os.urandom(6000)
    async with headend:
        await fleet.start()
        good = FirmwareCampaign(
            headend,
            image,
            sign_image(image, "2.0.0", VENDOR),
            ["FW01", "FW02"],
            chunk_size=1024,
            command_timeout_s=2,
        )
        progress = await good.run()
        assert {p.state for p in progress.values()} == {CampaignState.ACTIVE}
        assert all(p.bytes_confirmed == 6000 for p in progress.values())
        forged = FirmwareCampaign(
            headend,
            image,
            sign_image(image, "3.0.0", ec.generate_private_key(ec.SECP256R1())),
            ["FW01"],
            command_timeout_s=2,
        )
        assert (await forged.run())["FW01"].state is CampaignState.REFUSED
        broken = b"BROKEN" + os.urandom(3000)
        rollback = FirmwareCampaign(
            headend, broken, sign_image(broken, "4.0.0", VENDOR), ["FW02"], command_timeout_s=2
        )
        result = (await rollback.run())["FW02"]
        assert result.state is CampaignState.ROLLED_BACK
        assert "self-test" in result.detail
        await fleet.stop()
    versions = {
        sim.meter.config.serial: sim.module.firmware.running_version for sim in fleet.meters
    }  # type: ignore[union-attr]
    assert versions == {"FW01": "2.0.0", "FW02": "2.0.0"}


async def test_firmware_transfer_resumes_after_link_loss(tmp_path: Path, mosquitto: Any) -> None:
    fleet = _fleet_with_firmware(tmp_path, mosquitto, ["FW03"])
    sim = fleet.meters[0]
    headend = HeadEnd(fleet.store, fleet.sink, [BrokerPath("primary", "127.0.0.1", mosquitto.port)])
    image = os.urandom(12000)
    async with headend:
        await fleet.start()
        campaign = FirmwareCampaign(
            headend,
            image,
            sign_image(image, "2.1.0", VENDOR),
            ["FW03"],
            chunk_size=512,
            command_timeout_s=0.5,
            max_attempts=2,
            max_resumes=20,
        )
        task = asyncio.create_task(campaign.run())
        while campaign.meters["FW03"].bytes_confirmed < 3000:
            await asyncio.sleep(0.01)
        mosquitto.stop()
        await asyncio.sleep(1.5)
        mosquitto.start()
        progress = (await asyncio.wait_for(task, 60))["FW03"]
        await fleet.stop()
    assert progress.state is CampaignState.ACTIVE
    assert progress.resumes >= 1
    assert sim.module.firmware.running_version == "2.1.0"  # type: ignore[union-attr]


async def test_meter_refuses_forged_and_replayed_commands(tmp_path: Path, mosquitto: Any) -> None:
    fleet = Fleet(tmp_path, mosquitto, 1)
    sim = fleet.meters[0]
    serial = sim.meter.config.serial
    frames: list[tuple[str, bytes]] = []
    headend = HeadEnd(fleet.store, fleet.sink, [BrokerPath("primary", "127.0.0.1", mosquitto.port)])
    original = headend.downlink.paths["primary"].publish

    async def spy(topic: str, payload: bytes) -> str:
        frames.append((topic, payload))
        return await original(topic, payload)

    headend.downlink.paths["primary"].publish = spy  # type: ignore[method-assign]
    async with headend:
        await fleet.start()
        record = await headend.command(serial, "remote_disconnect", timeout=10, timeout_s=2)
        assert record.state is CommandState.ACKNOWLEDGED
        await headend.command(serial, "remote_reconnect", timeout=10, timeout_s=2)
        command_topic, command_frame = next(f for f in frames if f[0].endswith("/command"))
        tampered = bytearray(command_frame)
        tampered[-1] ^= 1
        sim.module.handle_downlink(command_topic, command_frame)  # replayed disconnect
        sim.module.handle_downlink(command_topic, bytes(tampered))
        await fleet.stop()
    assert sim.meter.relay.state is ControlState.READY_FOR_RECONNECTION  # replay: no effect
    counts = fleet.database.for_meter(serial).dead_letter_counts()
    assert counts[RejectReason.REPLAY] == 1
    assert counts[RejectReason.AUTHENTICATION_FAILED] == 1
