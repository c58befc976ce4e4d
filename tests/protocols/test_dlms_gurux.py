"""gurux-dlms, an independent implementation, reads our meter's DLMS server over TCP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from gurux_dlms import GXDateTime
from gurux_dlms.enums import AssociationResult, Authentication, SourceDiagnostic
from gurux_dlms.GXDLMSException import GXDLMSException
from gurux_dlms.objects import (
    GXDLMSClock,
    GXDLMSData,
    GXDLMSDisconnectControl,
    GXDLMSExtendedRegister,
    GXDLMSProfileGeneric,
    GXDLMSRegister,
)

from meterstack.meter import ControlState
from meterstack.meter.events import EventCode, LogKind

from .gurux_peer import GuruxPeer
from .support import (
    AUTHENTICATION_KEY,
    BLOCK_CIPHER_KEY,
    CLIENT_TITLE,
    PASSWORD,
    START,
    ServerThread,
    meter_with_history,
)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with ServerThread(meter_with_history(3)) as running:
        yield running


_counter = iter(range(1000, 10**9, 1000))


def ciphered_peer(port: int, **kw: object) -> GuruxPeer:
    return GuruxPeer(
        port,
        1,
        Authentication.HIGH_GMAC,
        None,
        ciphered=True,
        system_title=CLIENT_TITLE,
        block_cipher_key=kw.pop("block_cipher_key", BLOCK_CIPHER_KEY),  # type: ignore[arg-type]
        authentication_key=AUTHENTICATION_KEY,
        invocation_counter=next(_counter),
        **kw,  # type: ignore[arg-type]
    )


def _naive_utc(value: GXDateTime) -> datetime:
    return value.value.astimezone(UTC)


def test_registers_with_scaler_and_unit(server: ServerThread) -> None:
    peer = GuruxPeer(server.port)
    peer.associate()
    meter = server.meter
    energy = GXDLMSRegister("1.0.1.8.0.255")
    peer.read(energy, 3)
    peer.read(energy, 2)
    assert energy.value == meter.registers.a_plus
    assert int(energy.unit) == 30  # Wh
    assert energy.scaler == 1.0  # gurux shows 10^scaler
    voltage = GXDLMSRegister("1.0.12.27.0.255")
    peer.read(voltage, 3)
    peer.read(voltage, 2)
    assert voltage.value == pytest.approx(230.0)  # raw 2300 x 10^-1 V
    assert int(voltage.unit) == 35
    maximum = GXDLMSExtendedRegister("1.0.1.6.0.255")
    peer.read(maximum, 3)
    peer.read(maximum, 2)
    peer.read(maximum, 5)
    assert maximum.value == round(meter.demand.maximum_w)
    assert _naive_utc(maximum.captureTime).timestamp() == meter.demand.maximum_at
    serial = GXDLMSData("0.0.96.1.0.255")
    peer.read(serial, 2)
    assert serial.value == "MS000001"
    peer.release()


def test_clock(server: ServerThread) -> None:
    peer = GuruxPeer(server.port)
    peer.associate()
    clock = GXDLMSClock("0.0.1.0.0.255")
    peer.read(clock, 2)
    assert _naive_utc(clock.time) == server.device.binding.now().replace(microsecond=0)
    peer.release()


def test_load_profile_by_date_range(server: ServerThread) -> None:
    peer = GuruxPeer(server.port, max_pdu=512)  # forces block transfer
    peer.associate()
    profile = GXDLMSProfileGeneric("1.0.99.1.0.255")
    peer.read(profile, 3)
    assert len(profile.captureObjects) == 8
    start, end = START + timedelta(days=1), START + timedelta(days=1, hours=12)
    reply = peer.transact(peer.client.readRowsByRange(profile, start, end))
    peer.client.updateValue(profile, 2, reply.value)
    expected = [
        e
        for e in server.meter.load_profile
        if start.timestamp() <= e.interval_end <= end.timestamp()
    ]
    assert len(profile.buffer) == len(expected) == 25
    for row, entry in zip(profile.buffer, expected, strict=True):
        assert _naive_utc(row[0]).timestamp() == entry.interval_end
        assert row[1:5] == [
            entry.a_plus_wh,
            entry.a_minus_wh,
            entry.r_plus_varh,
            entry.r_minus_varh,
        ]
        assert row[7] == entry.status
    # 1000 W + 100 W per hour of day: the interval ending 12:00 on day 2 ran at 2100 W
    noon = next(r for r in profile.buffer if _naive_utc(r[0]).hour == 12)
    assert noon[1] in (1049, 1050, 1051)
    peer.release()


def test_event_log(server: ServerThread) -> None:
    meter = server.meter
    at = server.device.binding.now()
    meter.remote_disconnect(at)
    meter.remote_reconnect(at)
    peer = GuruxPeer(server.port)
    peer.associate()
    log = GXDLMSProfileGeneric("0.0.99.98.2.255")
    peer.read(log, 3)
    reply = peer.transact(peer.client.readRowsByRange(log, START, at + timedelta(minutes=1)))
    peer.client.updateValue(log, 2, reply.value)
    codes = [row[1] for row in log.buffer]
    held = [e.code for e in meter.event_logs[LogKind.DISCONNECTOR]]
    assert codes == held
    assert codes[-2:] == [EventCode.REMOTE_DISCONNECTION, EventCode.REMOTE_CONNECTION]
    peer.release()


def test_lls_disconnect_and_reconnect(server: ServerThread) -> None:
    peer = GuruxPeer(server.port, 17, Authentication.LOW, PASSWORD)
    peer.associate()
    relay = GXDLMSDisconnectControl("0.0.96.3.10.255")
    peer.transact(relay.remoteDisconnect(peer.client))
    assert server.meter.relay.state == ControlState.DISCONNECTED
    peer.read(relay, 3)
    assert int(relay.controlState) == 0
    peer.transact(relay.remoteReconnect(peer.client))
    # control mode 5: remote reconnection arms the relay (transition d)
    assert server.meter.relay.state == ControlState.READY_FOR_RECONNECTION
    server.meter.manual_reconnect(server.device.binding.now())
    peer.read(relay, 2)
    assert relay.outputState is True
    peer.release()


def test_public_client_cannot_disconnect(server: ServerThread) -> None:
    peer = GuruxPeer(server.port)
    peer.associate()
    relay = GXDLMSDisconnectControl("0.0.96.3.10.255")
    try:
        reply = peer.transact(relay.remoteDisconnect(peer.client))
        refused = reply.error == 3  # read-write-denied
    except Exception as exc:  # gurux raises GXDLMSException for error results
        refused = "denied" in str(exc).lower() or getattr(exc, "errorCode", None) == 3
    assert refused
    assert server.meter.relay.state == ControlState.CONNECTED
    peer.close()


def test_wrong_lls_password_is_rejected(server: ServerThread) -> None:
    peer = GuruxPeer(server.port, 17, Authentication.LOW, b"wrong")
    with pytest.raises(Exception, match=r"(?i)authentication|reject"):
        peer.associate()
    peer.close()


def test_hls_gmac_with_ciphering(server: ServerThread) -> None:
    peer = ciphered_peer(server.port)
    peer.associate()
    energy = GXDLMSRegister("1.0.1.8.0.255")
    peer.read(energy, 2)
    assert energy.value == server.meter.registers.a_plus
    profile = GXDLMSProfileGeneric("1.0.99.1.0.255")
    peer.read(profile, 3)
    reply = peer.transact(peer.client.readRowsByRange(profile, START, START + timedelta(days=1)))
    peer.client.updateValue(profile, 2, reply.value)
    assert len(profile.buffer) == 48
    relay = GXDLMSDisconnectControl("0.0.96.3.10.255")
    peer.transact(relay.remoteDisconnect(peer.client))
    assert server.meter.relay.state == ControlState.DISCONNECTED
    peer.transact(relay.remoteReconnect(peer.client))
    assert server.meter.relay.state == ControlState.READY_FOR_RECONNECTION
    server.meter.manual_reconnect(server.device.binding.now())
    clock = GXDLMSClock("0.0.1.0.0.255")
    target = server.device.binding.now() + timedelta(hours=1)
    clock.time = GXDateTime(target.replace(microsecond=0))
    peer.transact(peer.client.write(clock, 2))
    assert server.meter.now == target.replace(microsecond=0)
    peer.release()


def test_hls_with_a_wrong_key_is_refused(server: ServerThread) -> None:
    peer = ciphered_peer(server.port, block_cipher_key=bytes(16))
    with pytest.raises(GXDLMSException) as refused:
        peer.associate()
    peer.close()
    # the AARE's own refusal: rejected-permanent, authentication-failure (Green Book 9.4.2)
    assert int(refused.value.result) == AssociationResult.PERMANENT_REJECTED
    assert int(refused.value.diagnostic) == SourceDiagnostic.AUTHENTICATION_FAILURE
    # and the server keeps serving
    peer = ciphered_peer(server.port)
    peer.associate()
    peer.release()


def test_gurux_reads_the_object_list(server: ServerThread) -> None:
    peer = GuruxPeer(server.port)
    peer.associate()
    reply = peer.transact(peer.client.getObjectsRequest())
    objects = peer.client.parseObjects(reply.data, True)
    names = {obj.logicalName for obj in objects}
    assert {"1.0.99.1.0.255", "0.0.96.3.10.255", "0.0.1.0.0.255", "0.0.99.98.2.255"} <= names
    peer.release()


def test_a_replayed_gurux_frame_is_refused_and_service_goes_on(server: ServerThread) -> None:
    """gurux ciphers a GET (suite 0, its own invocation counter); the same wrapper frame
    sent again is refused with an exception-response, invocation-counter-error (6)."""
    peer = ciphered_peer(server.port)
    peer.associate()
    energy = GXDLMSRegister("1.0.1.8.0.255")
    (frame,) = peer.client.read(energy, 2)
    request = bytes(frame)
    peer.sock.sendall(request)
    first = _wrapper_apdu(peer)
    assert first[0] == 0xCC  # glo-get-response [204]: gurux's frame was accepted once
    peer.sock.sendall(request)
    replayed = _wrapper_apdu(peer)
    assert replayed[0] == 0xD8  # exception-response
    assert replayed[2] == 6  # service-error: invocation-counter-error
    peer.read(energy, 2)  # the association still serves fresh frames
    assert energy.value == server.meter.registers.a_plus
    peer.release()


def _wrapper_apdu(peer: GuruxPeer) -> bytes:
    """One IEC 62056-47 wrapper frame read off the socket: its APDU."""
    received = b""
    while len(received) < 8 or len(received) < 8 + int.from_bytes(received[6:8], "big"):
        chunk = peer.sock.recv(65536)
        assert chunk, "the server closed the connection"
        received += chunk
    return received[8 : 8 + int.from_bytes(received[6:8], "big")]


def test_an_altered_gurux_frame_is_refused_and_the_genuine_one_still_served(
    server: ServerThread,
) -> None:
    """One octet of gurux's GCM tag altered: exception-response, deciphering-error (5);
    the counter of a frame that failed authentication is not consumed, so the genuine
    frame with that counter is still accepted."""
    peer = ciphered_peer(server.port)
    peer.associate()
    energy = GXDLMSRegister("1.0.1.8.0.255")
    (frame,) = peer.client.read(energy, 2)
    genuine = bytes(frame)
    altered = genuine[:-1] + bytes([genuine[-1] ^ 0x01])
    peer.sock.sendall(altered)
    refused = _wrapper_apdu(peer)
    assert refused[0] == 0xD8  # exception-response
    assert refused[2] == 5  # service-error: deciphering-error
    peer.sock.sendall(genuine)
    assert _wrapper_apdu(peer)[0] == 0xCC  # glo-get-response
    peer.release()
