"""Commands, diagnostics and firmware campaigns through a real Mosquitto."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from decimal import Decimal
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
from meterstack.link import FirmwareSlot, RejectReason, ResponseStatus, SecuritySuite, sign_image
from meterstack.meter import ControlState, EventCode, LogKind, MemoryStore, Meter, MeterConfig
from meterstack.meter.config import LimiterConfig, PrepaidConfig, StsConfig
from meterstack.sts import KeyParameters, MeterPan, TokenIssuer, VendingKey, seal_decoder_key
from meterstack.sts import MeterRecord as StsMeterRecord

from ..link.support import (
    START,
    make_meter,
    meter_transport,
    wait_until,
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
        assert await wait_until(
            lambda: task.done() or campaign.meters["FW03"].bytes_confirmed >= 3000, 60
        )
        assert not task.done(), "the transfer ended before the link was cut"
        mosquitto.stop()
        await asyncio.sleep(1.5)
        mosquitto.start()
        async with asyncio.timeout(120):
            progress = (await task)["FW03"]
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


# STS: a meter's decoder key sealed under its KEK, and an independent token issuer (the
# vending side of meterstack.sts) that makes the tokens the head-end delivers.
STS_KEK = bytes(range(1, 33))
STS_VENDING = VendingKey.from_hex("abababababababab")
STS_KEYS = KeyParameters("123456", "01", 1, 2)
STS_RECORD = StsMeterRecord(MeterPan("600727", "00000000000"), STS_KEYS)


def _prepaid_sts_meter(serial: str) -> tuple[Meter, MemoryStore]:
    decoder_key = TokenIssuer(STS_VENDING).decoder_key(STS_RECORD)
    sts = StsConfig(
        decoder_key=seal_decoder_key(decoder_key, STS_KEYS, STS_KEK, serial),
        supply_group_code=STS_KEYS.supply_group_code,
        tariff_index=STS_KEYS.tariff_index,
        key_revision_number=STS_KEYS.key_revision_number,
        key_type=STS_KEYS.key_type,
        key_expiry_number=STS_KEYS.key_expiry_number,
        base_date=int(STS_KEYS.base_date),
        ea=STS_KEYS.ea.value,
        dkga=STS_KEYS.dkga.value,
    )
    config = MeterConfig(
        serial=serial,
        prepaid=PrepaidConfig(mode="energy", initial_credit=Decimal(5)),
        limiter=LimiterConfig(threshold_w=5000),
        sts=sts,
    )
    store = MemoryStore()
    meter = Meter(config, commissioned_at=START, store=store, key_encryption_key=STS_KEK)
    return meter, store


async def test_every_command_kind_is_carried_and_applied(tmp_path: Path, mosquitto: Any) -> None:
    """STS token delivery, tariff push, limiter threshold, clock sync and on-demand reads,
    each through Mosquitto to the meter and its response back to the command queue."""
    serial = "CMD0001"
    fleet = Fleet(tmp_path, mosquitto, 0)
    transport = meter_transport(mosquitto, serial)
    meter, meter_store = _prepaid_sts_meter(serial)
    sim = make_meter(
        serial,
        database=fleet.database,
        transport=transport,
        meter=meter,
        meter_store=meter_store,
        meter_key_encryption_key=STS_KEK,
    )
    transport.on_message = sim.module.receive
    fleet.store.register_meter(sim.credentials)
    fleet.meters.append(sim)
    headend = HeadEnd(fleet.store, fleet.sink, [BrokerPath("primary", "127.0.0.1", mosquitto.port)])

    async def command(name: str, args: dict[str, object] | None = None) -> Any:
        return await headend.command(serial, name, args, timeout=20, timeout_s=3)

    async with headend:
        await fleet.start()
        sim.step(4)
        # STS token delivery: a 25.6 kWh credit token issued 10 minutes after START.
        issued = (START + timedelta(minutes=10)).replace(tzinfo=None)
        token = TokenIssuer(STS_VENDING).credit(STS_RECORD, Decimal("25.6"), issued, rnd=3)
        before = sim.module.meter.credit.credit  # type: ignore[union-attr]
        delivered = await command("deliver_token", {"token": token.digits})
        assert delivered.state is CommandState.ACKNOWLEDGED, delivered
        assert delivered.result["amount"] == "25.6"
        assert sim.module.meter.credit.credit == before + Decimal("25.6")  # type: ignore[union-attr]
        again = await command("deliver_token", {"token": token.digits})  # a used token
        assert again.state is CommandState.FAILED
        assert again.status is ResponseStatus.REFUSED
        assert "used" in str(again.detail)
        assert sim.module.meter.credit.credit == before + Decimal("25.6")  # type: ignore[union-attr]

        limiter = await command("set_limiter_threshold", {"threshold_w": 2500})
        assert limiter.state is CommandState.ACKNOWLEDGED, limiter
        assert sim.module.meter.limiter is not None
        assert sim.module.meter.limiter.threshold_w == 2500
        bad = await command("set_limiter_threshold", {"threshold_w": -1})
        assert bad.status is ResponseStatus.INVALID
        assert "threshold_w" in str(bad.detail)

        new_time = sim.module.meter.now + timedelta(minutes=7)
        clock = await command("set_clock", {"new_time_ms": round(new_time.timestamp() * 1000)})
        assert clock.state is CommandState.ACKNOWLEDGED, clock
        assert sim.module.meter.now == new_time
        codes = [e.code for e in sim.module.meter.event_logs[LogKind.STANDARD]]
        assert EventCode.CLOCK_ADJUSTED_NEW_TIME in codes

        tariff = await command("set_tariff", {"price_per_kwh": {1: "0.25", 2: "0.10"}})
        assert tariff.state is CommandState.ACKNOWLEDGED, tariff
        prices = sim.module.meter.config.prepaid.price_per_kwh  # type: ignore[union-attr]
        assert prices == {1: Decimal("0.25"), 2: Decimal("0.10")}
        # Re-commissioned from its non-volatile image: the credit survived the switch.
        assert sim.module.meter.credit.credit == before + Decimal("25.6")  # type: ignore[union-attr]

        rows = len(sim.module.meter.load_profile.entries())
        profile = await command("read_profile", {"from_seq": 0})
        assert profile.state is CommandState.ACKNOWLEDGED
        assert profile.result == {"rows": rows}
        events = await command("read_events", {"log": "standard", "from_seq": 0})
        assert events.state is CommandState.ACKNOWLEDGED
        assert events.result["rows"] == len(sim.module.meter.event_logs[LogKind.STANDARD])
        unknown_log = await command("read_events", {"log": "no-such-log", "from_seq": 0})
        assert unknown_log.status is ResponseStatus.INVALID
        assert await wait_until(fleet.drained, 20)
        await fleet.stop()
    # The re-read profile arrives as duplicates of what the head-end already holds: the
    # natural key keeps one copy with the same values, no revision.
    assert fleet.sink.profile_seqs(serial) == rows
    assert sum(fleet.sink.revisions.values()) == 0


async def test_a_command_queued_while_the_meter_is_away_reaches_it_once(
    tmp_path: Path, mosquitto: Any
) -> None:
    """Retries with timeouts carry a command across the meter's absence: sent while it is
    disconnected, resent until it is back, executed once."""
    fleet = Fleet(tmp_path, mosquitto, 1)
    sim = fleet.meters[0]
    serial = sim.meter.config.serial
    headend = HeadEnd(fleet.store, fleet.sink, [BrokerPath("primary", "127.0.0.1", mosquitto.port)])
    async with headend:
        ident = headend.submit(serial, "remote_disconnect", timeout_s=0.3, max_attempts=100)
        assert await wait_until(lambda: headend.commands.get(ident).attempts >= 2, 10)
        assert headend.commands.get(ident).state is CommandState.SENT
        await fleet.start()  # the meter comes back
        record = await headend.dispatcher.wait(ident, 30)
        assert record.state is CommandState.ACKNOWLEDGED, record
        assert record.attempts >= 3
        await fleet.stop()
    assert sim.meter.relay.state is ControlState.DISCONNECTED
    assert sim.module.commands_executed == 1
