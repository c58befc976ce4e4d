"""Security suite 1: HLS mechanism 7 (ECDSA), suite 1 ciphering and ECDH key agreement.

Three independent checks besides our own client: gurux-dlms (an independent
implementation) associates with HLS-ECDSA and suite 1; the HLS signatures are built and
checked here from ``cryptography`` primitives over the Green Book's messages; and the key
agreement is carried out here from ``cryptography``'s ECDSA, ECDH and SP 800-56A
concatenation KDF (``ConcatKDFHash``), then proved by associating with the agreed keys.
(gurux-dlms 1.0.203 for Python does not implement key agreement: its
``getEphemeralPublicKeyData`` returns ``None``.)
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
from cryptography.hazmat.primitives.keywrap import aes_key_wrap
from gurux_dlms.enums import Authentication
from gurux_dlms.objects import GXDLMSRegister

from meterstack.core.obis import ObisCode
from meterstack.core.time import SimulatedClock
from meterstack.meter import ControlState, Meter
from meterstack.protocols.dlms import (
    DlmsSecurity,
    DlmsServer,
    LogicalDevice,
    SecurityKeys,
    default_clients,
)
from meterstack.protocols.dlms.acse import (
    Aare,
    Aarq,
    AcseDiagnostic,
    ApplicationContext,
    AssociationResult,
    InitiateRequest,
    Mechanism,
)
from meterstack.protocols.dlms.apdu import (
    ActionRequest,
    ActionResult,
    AttributeDescriptor,
    decode_action_response,
    encode_action_request,
)
from meterstack.protocols.dlms.axdr import Data
from meterstack.protocols.dlms.client import SECURITY_SETUP, ClientSettings, DlmsClient
from meterstack.protocols.dlms.security import (
    GLOBAL_TAGS,
    SecurityControl,
    protect,
    unprotect,
    unwrap_ciphered,
    wrap_ciphered,
)
from meterstack.protocols.dlms.server import Association
from meterstack.protocols.errors import AssociationError, DlmsServiceError, SecurityError

from .gurux_peer import GuruxPeer
from .support import (
    AUTHENTICATION_KEY,
    BLOCK_CIPHER_KEY,
    CLIENT_TITLE,
    MASTER_KEY,
    PASSWORD,
    SERVER_TITLE,
    ServerThread,
    meter_with_history,
)

SERVER_KEY = ec.derive_private_key(0x5EC0DE5, ec.SECP256R1())
CLIENT_KEY = ec.derive_private_key(0xC11E47, ec.SECP256R1())
KEYS = SecurityKeys(BLOCK_CIPHER_KEY, AUTHENTICATION_KEY)
A_PLUS = ObisCode.parse("1.0.1.8.0.255")
#: DLMS UA OID 2.16.756.5.8.3.0 (aes-gcm-128) as BER content octets: 2.16 -> 2x40+16 = 96,
#: 756 -> 0x85 0x74 (base 128), then 5, 8, 3, 0 [Green Book 9.2.3.4.6.5].
AES_GCM_128_OID = bytes((96, 0x85, 0x74, 5, 8, 3, 0))


def suite1_security() -> DlmsSecurity:
    return DlmsSecurity(
        server_system_title=SERVER_TITLE,
        keys=KEYS,
        master_key=MASTER_KEY,
        lls_password=PASSWORD,
        security_suite=1,
        signing_key=SERVER_KEY,
        client_verify_keys={CLIENT_TITLE: CLIENT_KEY.public_key()},
    )


def settings(invocation_counter: int = 1, **changes: Any) -> ClientSettings:
    base = ClientSettings.high_ecdsa(
        CLIENT_TITLE,
        KEYS,
        invocation_counter,
        signing_key=CLIENT_KEY,
        server_verify_key=SERVER_KEY.public_key(),
    )
    return dataclasses.replace(base, **changes)


def serve(body: Callable[[int, LogicalDevice], Awaitable[Any]]) -> Any:
    meter = meter_with_history(1)

    async def main() -> Any:
        device = LogicalDevice.for_meter(
            meter,
            SimulatedClock(meter.now + timedelta(seconds=1)),
            suite1_security(),
            default_clients(security_suite=1),
        )
        server = DlmsServer({1: device})
        port = await server.start("127.0.0.1", 0)
        try:
            return await body(port, device)
        finally:
            await server.close()

    return asyncio.run(main())


def raw_signature(key: ec.EllipticCurvePrivateKey, message: bytes) -> bytes:
    r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def verify_raw(key: ec.EllipticCurvePublicKey, message: bytes, signature: bytes) -> None:
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    key.verify(der, message, ec.ECDSA(hashes.SHA256()))  # raises InvalidSignature


def point(key: ec.EllipticCurvePublicKey) -> bytes:
    numbers = key.public_numbers()
    return numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big")


# ---------------------------------------------------------------------- our client


def test_hls_ecdsa_suite_1_reads_and_commands() -> None:
    async def body(port: int, device: LogicalDevice) -> None:
        async with await DlmsClient.connect("127.0.0.1", port, settings()) as client:
            reading = await client.read_register(A_PLUS)
            assert reading.raw == device.binding.meter.registers.a_plus
            await client.disconnect()
            assert device.binding.meter.relay.state == ControlState.DISCONNECTED
            suite = await client.get(64, SECURITY_SETUP, 3)
            assert suite.value == 1

    serve(body)


def test_key_agreement_replaces_the_keys_on_both_sides() -> None:
    async def body(port: int, device: LogicalDevice) -> None:
        async with await DlmsClient.connect("127.0.0.1", port, settings(10)) as client:
            agreed = await client.key_agreement()
            assert set(agreed) == {0, 2}
            new_keys = SecurityKeys(agreed[0], agreed[2])
            assert device.security.keys == new_keys != KEYS
            # the same association goes on under the agreed keys
            assert (await client.read_register(A_PLUS)).raw >= 0
        renewed = settings(100, keys=new_keys)
        async with await DlmsClient.connect("127.0.0.1", port, renewed) as client:
            assert (await client.read_register(A_PLUS)).raw >= 0
        with pytest.raises((AssociationError, SecurityError)):
            await DlmsClient.connect("127.0.0.1", port, settings(200))  # the old keys

    serve(body)


def test_hls_ecdsa_refusals() -> None:
    stranger = ec.generate_private_key(ec.SECP256R1())

    async def body(port: int, device: LogicalDevice) -> None:
        # a client key the meter does not trust: f(StoC) fails, the association stays shut
        with pytest.raises(DlmsServiceError):
            await DlmsClient.connect("127.0.0.1", port, settings(5, signing_key=stranger))
        # a meter key the client does not expect: f(CtoS) fails on the client
        with pytest.raises(SecurityError):
            await DlmsClient.connect(
                "127.0.0.1", port, settings(9, server_verify_key=stranger.public_key())
            )
        # an unknown client system title: AARE rejected
        with pytest.raises(AssociationError, match="diagnostic 13"):
            await DlmsClient.connect("127.0.0.1", port, settings(13, system_title=b"STRANGER"))
        # suite 0 APDUs to a suite 1 meter: refused before any key is tried
        with pytest.raises(AssociationError):
            await DlmsClient.connect("127.0.0.1", port, settings(20, security_suite=0))
        # and the meter still serves
        async with await DlmsClient.connect("127.0.0.1", port, settings(30)) as client:
            assert (await client.read_register(A_PLUS)).raw >= 0

    serve(body)


# ---------------------------------------------------------------------- bytes in, bytes out


def _association() -> Association:
    meter: Meter = meter_with_history(1)
    device = LogicalDevice.for_meter(
        meter,
        SimulatedClock(meter.now + timedelta(seconds=1)),
        suite1_security(),
        default_clients(security_suite=1),
    )
    return Association(device, 1, 1)


def _glo(plain: bytes, ic: int, sc: int = 0x31) -> bytes:
    return wrap_ciphered(GLOBAL_TAGS[plain[0]], protect(sc, CLIENT_TITLE, ic, KEYS, plain))


def _open(apdu: bytes) -> bytes:
    _, protected = unwrap_ciphered(apdu)
    return unprotect(protected, SERVER_TITLE, KEYS)[2]


def test_hls_ecdsa_signatures_follow_the_green_book_formulas() -> None:
    """f(StoC) = ECDSA(ST-C || ST-S || StoC || CtoS), f(CtoS) = ECDSA(ST-S || ST-C || CtoS
    || StoC), r || s; built and checked here with ``cryptography`` alone."""
    association = _association()
    ctos = bytes(range(32))
    aarq = Aarq(
        ApplicationContext.LOGICAL_NAME_WITH_CIPHERING,
        _glo(InitiateRequest(0x00101D, 0xFFFF).encode(), 1),
        CLIENT_TITLE,
        Mechanism.HIGH_ECDSA,
        ctos,
    )
    aare = Aare.decode(association.handle(aarq.encode()) or b"")
    assert aare.result == AssociationResult.ACCEPTED
    assert aare.diagnostic == AcseDiagnostic.AUTHENTICATION_REQUIRED
    assert aare.mechanism == Mechanism.HIGH_ECDSA
    stoc = aare.responding_authentication_value or b""
    assert len(stoc) == 32
    f_stoc = raw_signature(CLIENT_KEY, CLIENT_TITLE + SERVER_TITLE + stoc + ctos)
    request = ActionRequest(
        0xC1, AttributeDescriptor(15, ObisCode(0, 0, 40, 0, 0), 1), Data.octet_string(f_stoc)
    )
    response = _open(association.handle(_glo(encode_action_request(request), 2)) or b"")
    result, value, _ = decode_action_response(response)
    assert result == ActionResult.SUCCESS
    assert value is not None
    verify_raw(SERVER_KEY.public_key(), SERVER_TITLE + CLIENT_TITLE + ctos + stoc, value.value)  # type: ignore[arg-type]
    assert association.authenticated


def test_hls_ecdsa_reply_over_the_wrong_message_is_refused() -> None:
    association = _association()
    ctos = bytes(32)
    aarq = Aarq(
        ApplicationContext.LOGICAL_NAME_WITH_CIPHERING,
        _glo(InitiateRequest(0x00101D, 0xFFFF).encode(), 1),
        CLIENT_TITLE,
        Mechanism.HIGH_ECDSA,
        ctos,
    )
    stoc = Aare.decode(association.handle(aarq.encode()) or b"").responding_authentication_value
    assert stoc is not None
    # challenges swapped: a valid signature, but not over what mechanism 7 signs
    f_stoc = raw_signature(CLIENT_KEY, CLIENT_TITLE + SERVER_TITLE + ctos + stoc)
    request = ActionRequest(
        0xC1, AttributeDescriptor(15, ObisCode(0, 0, 40, 0, 0), 1), Data.octet_string(f_stoc)
    )
    response = _open(association.handle(_glo(encode_action_request(request), 2)) or b"")
    assert decode_action_response(response)[0] == ActionResult.READ_WRITE_DENIED
    assert not association.authenticated


# ---------------------------------------------------------------------- key agreement


def test_key_agreement_built_from_the_standard_formulas() -> None:
    """The client side of the Ephemeral Unified Model written here from primitives:
    key_data = Q || ECDSA(key_id || Q); Z = ECDH x-coordinate; K = SHA-256(00000001 || Z ||
    AlgorithmID || ST-C || ST-S) truncated to 16 octets (SP 800-56A 5.8.2.1)."""

    async def body(port: int, device: LogicalDevice) -> None:
        ephemeral = {key_id: ec.generate_private_key(ec.SECP256R1()) for key_id in (0, 2)}
        items = []
        for key_id, key in ephemeral.items():
            q = point(key.public_key())
            items.append(
                Data.structure(
                    Data.enum(key_id),
                    Data.octet_string(q + raw_signature(CLIENT_KEY, bytes((key_id,)) + q)),
                )
            )
        async with await DlmsClient.connect("127.0.0.1", port, settings(40)) as client:
            answer = await client.action(64, SECURITY_SETUP, 3, Data.array(items))
        assert answer is not None
        derived = {}
        for item in answer.value:  # type: ignore[union-attr]
            key_id = item.value[0].value
            key_data = item.value[1].value
            q_server, signature = key_data[:64], key_data[64:]
            verify_raw(SERVER_KEY.public_key(), bytes((key_id,)) + q_server, signature)
            peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + q_server)
            z = ephemeral[key_id].exchange(ec.ECDH(), peer)
            kdf = ConcatKDFHash(
                hashes.SHA256(), 16, otherinfo=AES_GCM_128_OID + CLIENT_TITLE + SERVER_TITLE
            )
            derived[key_id] = kdf.derive(z)
        assert device.security.keys == SecurityKeys(derived[0], derived[2])
        renewed = settings(50, keys=SecurityKeys(derived[0], derived[2]))
        async with await DlmsClient.connect("127.0.0.1", port, renewed) as client:
            assert (await client.read_register(A_PLUS)).raw >= 0

    serve(body)


@pytest.mark.parametrize(
    ("case", "result"),
    [
        ("bad_signature", ActionResult.READ_WRITE_DENIED),
        ("broadcast_key", ActionResult.OTHER_REASON),
        ("short", ActionResult.READ_WRITE_DENIED),
        ("not_a_point", ActionResult.READ_WRITE_DENIED),
    ],
)
def test_bad_key_agreement_is_refused_and_keys_stay(case: str, result: ActionResult) -> None:
    async def body(port: int, device: LogicalDevice) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        q = point(key.public_key())
        key_id = 1 if case == "broadcast_key" else 0
        signature = raw_signature(CLIENT_KEY, bytes((key_id,)) + q)
        key_data = {
            "bad_signature": q + raw_signature(CLIENT_KEY, b"\x02" + q),
            "broadcast_key": q + signature,
            "short": q,
            "not_a_point": bytes(64) + signature,
        }[case]
        request = Data.array([Data.structure(Data.enum(key_id), Data.octet_string(key_data))])
        async with await DlmsClient.connect("127.0.0.1", port, settings(60)) as client:
            with pytest.raises(DlmsServiceError) as refused:
                await client.action(64, SECURITY_SETUP, 3, request)
            assert refused.value.result == result
            assert (await client.read_register(A_PLUS)).raw >= 0  # old keys still on
        assert device.security.keys == KEYS

    serve(body)


def test_key_transfer_wraps_under_the_master_key_and_acts_after_the_response() -> None:
    new_ek, new_ak = bytes(range(16, 32)), bytes(range(32, 48))

    async def body(port: int, device: LogicalDevice) -> None:
        request = Data.array(
            [
                Data.structure(Data.enum(0), Data.octet_string(aes_key_wrap(MASTER_KEY, new_ek))),
                Data.structure(Data.enum(2), Data.octet_string(aes_key_wrap(MASTER_KEY, new_ak))),
            ]
        )
        async with await DlmsClient.connect("127.0.0.1", port, settings(70)) as client:
            # the response arrives under the old keys (the client can read it)
            assert await client.action(64, SECURITY_SETUP, 2, request) is None
        assert device.security.keys == SecurityKeys(new_ek, new_ak)
        bad = Data.array([Data.structure(Data.enum(0), Data.octet_string(bytes(24)))])
        renewed = settings(80, keys=SecurityKeys(new_ek, new_ak))
        async with await DlmsClient.connect("127.0.0.1", port, renewed) as client:
            with pytest.raises(DlmsServiceError):
                await client.action(64, SECURITY_SETUP, 2, bad)
        assert device.security.keys == SecurityKeys(new_ek, new_ak)

    serve(body)


def test_key_methods_need_hls() -> None:
    async def body(port: int, device: LogicalDevice) -> None:
        reader = ClientSettings.low(PASSWORD)
        request = Data.array([Data.structure(Data.enum(0), Data.octet_string(bytes(24)))])
        async with await DlmsClient.connect("127.0.0.1", port, reader) as client:
            with pytest.raises(DlmsServiceError) as refused:
                await client.action(64, SECURITY_SETUP, 2, request)
        assert refused.value.result == ActionResult.READ_WRITE_DENIED

    serve(body)


# ---------------------------------------------------------------------- gurux-dlms


@pytest.fixture
def suite1_server() -> Iterator[ServerThread]:
    thread = ServerThread(meter_with_history(1))
    thread.device = LogicalDevice.for_meter(
        thread.meter, thread.clock, suite1_security(), default_clients(security_suite=1)
    )
    thread.server = DlmsServer({1: thread.device})
    with thread as running:
        yield running


def test_gurux_associates_with_hls_ecdsa_and_suite_1(suite1_server: ServerThread) -> None:
    peer = GuruxPeer(
        suite1_server.port,
        1,
        Authentication.HIGH_ECDSA,
        None,
        ciphered=True,
        system_title=CLIENT_TITLE,
        block_cipher_key=BLOCK_CIPHER_KEY,
        authentication_key=AUTHENTICATION_KEY,
        invocation_counter=500,
        security_suite=1,
        client_signing_key=CLIENT_KEY,
        server_verify_key=SERVER_KEY.public_key(),
    )
    peer.associate()  # gurux checks our f(CtoS) with the meter's public key
    energy = GXDLMSRegister("1.0.1.8.0.255")
    peer.read(energy, 2)
    assert energy.value == suite1_server.meter.registers.a_plus
    peer.release()


def test_gurux_with_the_wrong_signing_key_is_refused(suite1_server: ServerThread) -> None:
    peer = GuruxPeer(
        suite1_server.port,
        1,
        Authentication.HIGH_ECDSA,
        None,
        ciphered=True,
        system_title=CLIENT_TITLE,
        block_cipher_key=BLOCK_CIPHER_KEY,
        authentication_key=AUTHENTICATION_KEY,
        invocation_counter=600,
        security_suite=1,
        client_signing_key=ec.generate_private_key(ec.SECP256R1()),
        server_verify_key=SERVER_KEY.public_key(),
    )
    with pytest.raises(Exception, match=r"."):  # gurux raises its own exception types
        peer.associate()
    peer.close()


def test_gurux_refuses_a_meter_signature_under_another_key(suite1_server: ServerThread) -> None:
    """gurux really checks f(CtoS): with another public key for the meter it refuses."""
    peer = GuruxPeer(
        suite1_server.port,
        1,
        Authentication.HIGH_ECDSA,
        None,
        ciphered=True,
        system_title=CLIENT_TITLE,
        block_cipher_key=BLOCK_CIPHER_KEY,
        authentication_key=AUTHENTICATION_KEY,
        invocation_counter=700,
        security_suite=1,
        client_signing_key=CLIENT_KEY,
        server_verify_key=ec.generate_private_key(ec.SECP256R1()).public_key(),
    )
    with pytest.raises(Exception, match=r"."):
        peer.associate()
    peer.close()


def test_suite_0_sc_octet_is_not_accepted_by_a_suite_1_meter() -> None:
    association = _association()
    aarq = Aarq(
        ApplicationContext.LOGICAL_NAME_WITH_CIPHERING,
        _glo(InitiateRequest(0x00101D, 0xFFFF).encode(), 1, sc=int(SecurityControl(0x30))),
        CLIENT_TITLE,
        Mechanism.HIGH_ECDSA,
        bytes(32),
    )
    aare = Aare.decode(association.handle(aarq.encode()) or b"")
    assert aare.result != AssociationResult.ACCEPTED


# ---------------------------------------------------------------------- primitives


def test_kdf_is_sp_800_56a_single_step() -> None:
    from meterstack.protocols.dlms.security import AES_GCM_128_ALGORITHM_ID, concat_kdf

    z = bytes(range(32))
    expected = ConcatKDFHash(
        hashes.SHA256(), 16, otherinfo=AES_GCM_128_OID + CLIENT_TITLE + SERVER_TITLE
    ).derive(z)
    assert AES_GCM_128_ALGORITHM_ID == AES_GCM_128_OID
    assert concat_kdf(z, AES_GCM_128_ALGORITHM_ID, CLIENT_TITLE, SERVER_TITLE) == expected


def test_suite_1_primitives_refuse_bad_input() -> None:
    from meterstack.protocols.dlms.security import (
        algorithm_id_for,
        ecdsa_verify,
        open_ephemeral_key_data,
        public_key_from_octets,
    )
    from meterstack.protocols.errors import ProtocolError

    with pytest.raises(ProtocolError) as bad_id:
        algorithm_id_for(1)
    assert bad_id.value.field == "key_id"
    with pytest.raises(ProtocolError) as off_curve:
        public_key_from_octets(bytes(64))
    assert off_curve.value.field == "public_key"
    with pytest.raises(ProtocolError) as short:
        open_ephemeral_key_data(0, bytes(100), SERVER_KEY.public_key())
    assert short.value.field == "key_data"
    with pytest.raises(SecurityError):
        ecdsa_verify(SERVER_KEY.public_key(), b"message", bytes(63))
    with pytest.raises(SecurityError):
        ecdsa_verify(SERVER_KEY.public_key(), b"message", raw_signature(SERVER_KEY, b"other"))
