"""Benchmark the DLMS server: register reads per second, load-profile days per second,
high-level associations per second (HLS-GMAC suite 0, HLS-ECDSA suite 1), and how many
virtual meters one process serves at one read per second each. Last, the export-control
report of every standard scenario (simulated time; worst overshoot [W] and its duration).

Prints JSON lines. The read ceiling is the in-process association (bytes in, bytes out,
no TCP) measured in the same run, for register reads and for the load profile; ``ratio``
is the TCP rate over it. The ECDSA ceiling is
the association's public-key work alone (two signatures, two verifications), measured in
the same run.

    python bench/protocols.py [--reads 3000] [--days 30] [--associations 200]
                              [--meters 100,200,400,800]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric import ec

from meterstack.core.obis import ObisCode
from meterstack.core.time import SimulatedClock
from meterstack.meter import Measurement, Meter, MeterConfig
from meterstack.meter.export_control import ExportControlConfig
from meterstack.protocols.dlms import (
    DlmsSecurity,
    DlmsServer,
    LogicalDevice,
    SecurityKeys,
    default_clients,
)
from meterstack.protocols.dlms import apdu as xdlms
from meterstack.protocols.dlms.acse import Aarq, ApplicationContext, InitiateRequest, Mechanism
from meterstack.protocols.dlms.apdu import AccessSelection, AttributeDescriptor, GetRequest
from meterstack.protocols.dlms.axdr import decode_data_exact
from meterstack.protocols.dlms.client import (
    LOAD_PROFILE,
    ClientSettings,
    DlmsClient,
    clock_range_selector,
)
from meterstack.protocols.dlms.security import (
    check_ecdsa_authentication,
    ecdsa_authentication,
)
from meterstack.protocols.dlms.server import Association
from meterstack.protocols.sunspec import InverterSettings, simulate, standard_scenarios

START = datetime(2024, 1, 1, tzinfo=UTC)
A_PLUS = ObisCode.parse("1.0.1.8.0.255")


def security() -> DlmsSecurity:
    return DlmsSecurity(b"MST00001", SecurityKeys(bytes(16), bytes(16)), bytes(16), b"12345678")


def make_meter(serial: str, days: int) -> Meter:
    meter = Meter(
        MeterConfig(serial=serial, profile_capacity_days=max(days, 1) + 1), commissioned_at=START
    )
    at = START
    for _ in range(days * 48):
        at += timedelta(minutes=30)
        meter.step(Measurement(at, (230.0,), (5.0,), (1000.0,), (100.0,)))
    return meter


def device(meter: Meter) -> LogicalDevice:
    return LogicalDevice.for_meter(meter, SimulatedClock(meter.now), security(), default_clients())


def in_process_reads(meter: Meter, count: int) -> float:
    association = _associated(meter)
    request = bytes.fromhex("c001c10003010001080 0ff0200".replace(" ", ""))
    started = time.perf_counter()
    for _ in range(count):
        association.handle(request)
    return count / (time.perf_counter() - started)


def _associated(meter: Meter) -> Association:
    association = Association(device(meter), 16, 1)
    initiate = InitiateRequest(0x00101D, 0xFFFF).encode()
    association.handle(
        Aarq(ApplicationContext.LOGICAL_NAME, initiate, None, Mechanism.LOWEST).encode()
    )
    return association


def in_process_profile(meter: Meter, days: int) -> float:
    """Load-profile days per second with no TCP: the same selective GET (by date range)
    handed to the association as bytes, blocks followed to the end."""
    association = _associated(meter)
    parameters = clock_range_selector(START, START + timedelta(days=days))
    request = GetRequest(1, AttributeDescriptor(7, LOAD_PROFILE, 2), AccessSelection(1, parameters))
    started = time.perf_counter()
    result = xdlms.decode_get_response(association.handle(xdlms.encode_get_request(request)))
    raw = bytearray(result.raw)
    while result.value is None and not result.last_block:
        assert result.block_number is not None
        answer = association.handle(xdlms.encode_get_next(1, result.block_number))
        result = xdlms.decode_get_response(answer)
        raw += result.raw
    rows = result.value if result.value is not None else decode_data_exact(bytes(raw), "buffer")
    elapsed = time.perf_counter() - started
    return len(rows.as_items("buffer")) / 48 / elapsed


def export_control_reports() -> list[dict[str, object]]:
    """Export control in simulated time against the simulated inverter (slow and fast
    converters): the worst export above the limit [W] and how long it lasted [s]."""
    config = ExportControlConfig(rated_power_w=5000.0)
    reports = []
    for label, settings in (
        ("tau2_lat0.5", InverterSettings(rated_power_w=5000.0, tau_s=2.0, latency_s=0.5)),
        ("tau1_lat0.2", InverterSettings(rated_power_w=5000.0, tau_s=1.0, latency_s=0.2)),
    ):
        for scenario in standard_scenarios():
            report = simulate(scenario, config, settings).as_dict()
            reports.append(
                {
                    "bench": "export_control",
                    "inverter": label,
                    **report,
                    "limit_s": config.clear_within_s,
                }
            )
    return reports


async def tcp_reads(meter: Meter, count: int, days: int) -> tuple[float, float]:
    server = DlmsServer({1: device(meter)})
    port = await server.start("127.0.0.1", 0)
    async with await DlmsClient.connect("127.0.0.1", port, ClientSettings.public()) as client:
        started = time.perf_counter()
        for _ in range(count):
            await client.get(3, A_PLUS, 2)
        reads = count / (time.perf_counter() - started)
        started = time.perf_counter()
        rows = await client.read_profile(LOAD_PROFILE, START, START + timedelta(days=days))
        profile_days = len(rows) / 48 / (time.perf_counter() - started)
    await server.close()
    return reads, profile_days


CLIENT_TITLE = b"HEADEND1"
SERVER_KEY = ec.derive_private_key(0x5EC0DE5, ec.SECP256R1())
CLIENT_KEY = ec.derive_private_key(0xC11E47, ec.SECP256R1())


async def hls_associations(meter: Meter, count: int, suite: int) -> float:
    """Associations per second over TCP: AARQ/AARE, HLS passes 3-4, one ciphered read,
    release."""
    keys = SecurityKeys(bytes(16), bytes(16))
    security = DlmsSecurity(
        b"MST00001",
        keys,
        bytes(16),
        b"12345678",
        security_suite=suite,
        signing_key=SERVER_KEY if suite == 1 else None,
        client_verify_keys={CLIENT_TITLE: CLIENT_KEY.public_key()} if suite == 1 else {},
    )
    logical = LogicalDevice.for_meter(
        meter, SimulatedClock(meter.now), security, default_clients(security_suite=suite)
    )
    server = DlmsServer({1: logical})
    port = await server.start("127.0.0.1", 0)
    started = time.perf_counter()
    for n in range(count):
        if suite == 1:
            settings = ClientSettings.high_ecdsa(
                CLIENT_TITLE,
                keys,
                1 + 10 * n,
                signing_key=CLIENT_KEY,
                server_verify_key=SERVER_KEY.public_key(),
            )
        else:
            settings = ClientSettings.high_gmac(CLIENT_TITLE, keys, 1 + 10 * n)
        async with await DlmsClient.connect("127.0.0.1", port, settings) as client:
            await client.get(3, A_PLUS, 2)
    rate = count / (time.perf_counter() - started)
    await server.close()
    return rate


def ecdsa_ceiling(count: int) -> float:
    """HLS-ECDSA's public-key work per association (2 signatures, 2 verifications)."""
    ctos, stoc = bytes(32), bytes(range(32))
    server_title = b"MST00001"
    started = time.perf_counter()
    for _ in range(count):
        f_stoc = ecdsa_authentication(CLIENT_KEY, CLIENT_TITLE, server_title, ctos, stoc)
        check_ecdsa_authentication(
            f_stoc,
            CLIENT_KEY.public_key(),
            signer_title=CLIENT_TITLE,
            peer_title=server_title,
            signer_challenge=ctos,
            peer_challenge=stoc,
        )
        f_ctos = ecdsa_authentication(SERVER_KEY, server_title, CLIENT_TITLE, stoc, ctos)
        check_ecdsa_authentication(
            f_ctos,
            SERVER_KEY.public_key(),
            signer_title=server_title,
            peer_title=CLIENT_TITLE,
            signer_challenge=stoc,
            peer_challenge=ctos,
        )
    return count / (time.perf_counter() - started)


async def fleet(meters: int, seconds: float) -> dict[str, float]:
    devices = {
        sap: device(Meter(MeterConfig(serial=f"MS{sap:06d}"), commissioned_at=START))
        for sap in range(1, meters + 1)
    }
    server = DlmsServer(devices)
    port = await server.start("127.0.0.1", 0)
    latencies: list[float] = []
    missed = 0

    async def one(sap: int) -> None:
        nonlocal missed
        client = await DlmsClient.connect("127.0.0.1", port, ClientSettings.public(sap))
        loop = asyncio.get_running_loop()
        next_at = loop.time() + (sap % 100) / 100.0
        end = loop.time() + seconds
        while next_at < end:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            sent = loop.time()
            await client.get(3, A_PLUS, 2)
            latency = loop.time() - sent
            latencies.append(latency)
            if loop.time() - next_at > 1.0:
                missed += 1
            next_at += 1.0
        await client.close()

    await asyncio.gather(*(one(sap) for sap in devices))
    await server.close()
    latencies.sort()
    p95 = latencies[int(0.95 * (len(latencies) - 1))] if latencies else float("inf")
    return {
        "meters": meters,
        "reads": len(latencies),
        "p95_latency_s": round(p95, 4),
        "missed": missed,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reads", type=int, default=3000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--associations", type=int, default=200)
    parser.add_argument("--meters", default="100,250,500,1000")
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    meter = make_meter("MS000001", args.days)
    ceiling = in_process_reads(meter, args.reads)
    reads, days = asyncio.run(tcp_reads(meter, args.reads, args.days))
    print(
        json.dumps(
            {
                "bench": "dlms_register_reads",
                "reads_per_s": round(reads, 1),
                "in_process_ceiling_per_s": round(ceiling, 1),
                "ratio": round(reads / ceiling, 3),
            }
        )
    )
    profile_ceiling = in_process_profile(meter, args.days)
    print(
        json.dumps(
            {
                "bench": "dlms_load_profile",
                "days_per_s": round(days, 2),
                "in_process_ceiling_days_per_s": round(profile_ceiling, 2),
                "ratio": round(days / profile_ceiling, 3),
                "days": args.days,
                "rows_per_day": 48,
            }
        )
    )
    gmac = asyncio.run(hls_associations(meter, args.associations, 0))
    ecdsa = asyncio.run(hls_associations(meter, args.associations, 1))
    ceiling_ecdsa = ecdsa_ceiling(args.associations)
    print(
        json.dumps(
            {
                "bench": "dlms_hls_associations",
                "gmac_suite0_per_s": round(gmac, 1),
                "ecdsa_suite1_per_s": round(ecdsa, 1),
                "ecdsa_crypto_ceiling_per_s": round(ceiling_ecdsa, 1),
                "ecdsa_ratio": round(ecdsa / ceiling_ecdsa, 3),
                "associations": args.associations,
            }
        )
    )
    served = 0
    for count in (int(n) for n in args.meters.split(",")):
        result = asyncio.run(fleet(count, args.seconds))
        ok = result["missed"] == 0 and result["p95_latency_s"] < 0.5
        print(json.dumps({"bench": "dlms_fleet_step", **result, "keeps_up": ok}))
        if not ok:
            break
        served = count
    print(
        json.dumps(
            {
                "bench": "dlms_concurrent_meters",
                "meters_at_1_read_per_s": served,
                "criterion": "no read late by > 1 s, p95 latency < 0.5 s",
            }
        )
    )
    for report in export_control_reports():
        print(json.dumps(report))


if __name__ == "__main__":
    main()
