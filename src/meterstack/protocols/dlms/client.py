"""The head-end's DLMS/COSEM client over TCP (IEC 62056-47 wrapper).

Reads registers (with scaler and unit), load profiles and event logs by date range
(selective access, block transfer), disconnects and reconnects the supply, enters STS
tokens through the token gateway and synchronises the clock, with lowest, low or
high-level authentication (GMAC with suite 0, ECDSA with suite 1) and ciphering; with
suite 1 it also agrees new keys with the meter (ECDH). It is a wire-level client: the
head-end decides whom to call and when.

```python
async with await DlmsClient.connect("127.0.0.1", 4059, ClientSettings.public()) as meter:
    reading = await meter.read_register(ObisCode.parse("1.0.1.8.0.255"))
    rows = await meter.read_profile(LOAD_PROFILE, start, end)
```

References
----------
.. [1] IEC 62056-5-3:2017 (Green Book ed. 8), 9.3 xDLMS services, 9.2.7 security.
.. [2] IEC 62056-6-2:2017 (Blue Book ed. 12), the interface classes read here.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType

from cryptography.hazmat.primitives.asymmetric import ec

from meterstack.core.obis import ObisCode
from meterstack.protocols.dlms import apdu as xdlms
from meterstack.protocols.dlms.acse import (
    AARE_TAG,
    Aare,
    Aarq,
    ApplicationContext,
    AssociationResult,
    Conformance,
    InitiateRequest,
    InitiateResponse,
    Mechanism,
    release_request,
)
from meterstack.protocols.dlms.apdu import (
    AccessSelection,
    ActionRequest,
    ActionResult,
    AttributeDescriptor,
    DataAccessResult,
    GetRequest,
    SetRequest,
)
from meterstack.protocols.dlms.axdr import (
    Data,
    DataType,
    date_time_data,
    decode_data_exact,
    decode_date_time,
)
from meterstack.protocols.dlms.security import (
    GLOBAL_TAGS,
    PLAIN_TAG_OF,
    GlobalKeyId,
    ReplayGuard,
    SecurityControl,
    SecurityKeys,
    SecuritySuite,
    agreed_key,
    check_ecdsa_authentication,
    check_gmac_authentication,
    ecdsa_authentication,
    ephemeral_key_data,
    gmac_authentication,
    open_ephemeral_key_data,
    protect,
    unprotect,
    unwrap_ciphered,
    wrap_ciphered,
)
from meterstack.protocols.dlms.wrapper import WrapperFramer, encode_frame
from meterstack.protocols.errors import (
    AssociationError,
    DlmsServiceError,
    ProtocolError,
    SecurityError,
)

CLOCK = ObisCode(0, 0, 1, 0, 0)
CURRENT_ASSOCIATION = ObisCode(0, 0, 40, 0, 0)
SECURITY_SETUP = ObisCode(0, 0, 43, 0, 0)
DISCONNECT_CONTROL = ObisCode(0, 0, 96, 3, 10)
IMAGE_TRANSFER = ObisCode(0, 0, 44, 0, 0)
TOKEN_GATEWAY = ObisCode(0, 0, 19, 40, 0)
LOAD_PROFILE = ObisCode(1, 0, 99, 1, 0)

CLIENT_CONFORMANCE = (
    Conformance.GET
    | Conformance.SET
    | Conformance.ACTION
    | Conformance.SELECTIVE_ACCESS
    | Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ
)


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """How to associate: addresses, mechanism, secrets."""

    client_sap: int = 16
    server_sap: int = 1
    mechanism: Mechanism = Mechanism.LOWEST
    password: bytes | None = None
    system_title: bytes | None = None
    keys: SecurityKeys | None = None
    invocation_counter: int = 1
    security_suite: int = 0
    max_pdu_size: int = 0xFFFF
    timeout_s: float = 10.0
    signing_key: ec.EllipticCurvePrivateKey | None = None
    server_verify_key: ec.EllipticCurvePublicKey | None = None

    @property
    def ciphered(self) -> bool:
        return self.keys is not None

    @classmethod
    def public(cls, server_sap: int = 1) -> ClientSettings:
        return cls(16, server_sap)

    @classmethod
    def low(cls, password: bytes, client_sap: int = 17, server_sap: int = 1) -> ClientSettings:
        return cls(client_sap, server_sap, Mechanism.LOW, password)

    @classmethod
    def high_gmac(
        cls,
        system_title: bytes,
        keys: SecurityKeys,
        invocation_counter: int,
        client_sap: int = 1,
        server_sap: int = 1,
    ) -> ClientSettings:
        return cls(
            client_sap,
            server_sap,
            Mechanism.HIGH_GMAC,
            None,
            system_title,
            keys,
            invocation_counter,
        )

    @classmethod
    def high_ecdsa(
        cls,
        system_title: bytes,
        keys: SecurityKeys,
        invocation_counter: int,
        *,
        signing_key: ec.EllipticCurvePrivateKey,
        server_verify_key: ec.EllipticCurvePublicKey,
        client_sap: int = 1,
        server_sap: int = 1,
    ) -> ClientSettings:
        """HLS mechanism 7 with suite 1 ciphering: this client's P-256 signing key and the
        meter's public one."""
        return cls(
            client_sap,
            server_sap,
            Mechanism.HIGH_ECDSA,
            None,
            system_title,
            keys,
            invocation_counter,
            int(SecuritySuite.ECDH_ECDSA_AES_GCM_128_SHA_256),
            signing_key=signing_key,
            server_verify_key=server_verify_key,
        )


@dataclass(frozen=True, slots=True)
class RegisterReading:
    """A register's value with its scaler and unit (Blue Book Table 4 unit code)."""

    obis: ObisCode
    raw: int | float
    scaler: int
    unit: int

    @property
    def value(self) -> float:
        """The quantity in its unit: raw x 10^scaler."""
        return float(self.raw) * 10.0**self.scaler


@dataclass(frozen=True, slots=True)
class ProfileRow:
    """One profile row: its clock column and the other captured values as Python values."""

    at: datetime
    values: tuple[object, ...]


def _python(value: Data) -> object:
    if value.type in (DataType.ARRAY, DataType.STRUCTURE):
        assert isinstance(value.value, tuple)
        return tuple(_python(item) for item in value.value)
    return value.value


def clock_range_selector(start: datetime, end: datetime) -> Data:
    """Selective access by range (selector 1) on a profile's clock column, all columns.

    The restricting object is the clock (class 8, attribute 2), as IEC 62056-6-2's
    ``range_descriptor`` gives it.
    """
    restricting = Data.structure(
        Data.long_unsigned(8),
        Data.octet_string(CLOCK.to_bytes()),
        Data.integer(2),
        Data.long_unsigned(0),
    )
    return Data.structure(restricting, date_time_data(start), date_time_data(end), Data.array([]))


class DlmsClient:
    """One association with one logical device."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        settings: ClientSettings,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.settings = settings
        self._framer = WrapperFramer()
        self._invoke = 0
        self._ic = settings.invocation_counter
        self._replay = ReplayGuard()
        #: The keys in use: the settings' until a key agreement replaces them.
        self.keys = settings.keys
        self.server_title: bytes | None = None
        self.conformance = 0
        self.server_max_pdu = 0
        self.associated = False

    @classmethod
    async def connect(cls, host: str, port: int, settings: ClientSettings) -> DlmsClient:
        """Open the TCP connection and the association."""
        async with asyncio.timeout(settings.timeout_s):
            reader, writer = await asyncio.open_connection(host, port)
        client = cls(reader, writer, settings)
        try:
            await client.associate()
        except BaseException:
            await client.close()
            raise
        return client

    async def __aenter__(self) -> DlmsClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if self.associated and exc is None:
                await self.release()
        finally:
            await self.close()

    @property
    def invocation_counter(self) -> int:
        """The next invocation counter this client will use (persist it between sessions)."""
        return self._ic

    # ------------------------------------------------------------------ transport

    async def _exchange(self, apdu: bytes) -> bytes:
        settings = self.settings
        self._writer.write(encode_frame(settings.client_sap, settings.server_sap, apdu))
        await self._writer.drain()
        while True:
            async with asyncio.timeout(settings.timeout_s):
                chunk = await self._reader.read(65536)
            if not chunk:
                raise ConnectionError("the meter closed the connection")
            frames = self._framer.feed(chunk)
            if frames:
                return frames[0].apdu

    def _next_invoke(self) -> int:
        self._invoke = (self._invoke + 1) & 0x0F
        return 0xC0 | self._invoke  # high priority, confirmed

    def _next_ic(self) -> int:
        ic = self._ic
        self._ic += 1
        return ic

    def _protect(self, plain: bytes) -> bytes:
        settings = self.settings
        assert self.keys is not None
        assert settings.system_title is not None
        sc = int(SecurityControl.AUTHENTICATION | SecurityControl.ENCRYPTION)
        sc |= settings.security_suite
        protected = protect(sc, settings.system_title, self._next_ic(), self.keys, plain)
        return wrap_ciphered(GLOBAL_TAGS[plain[0]], protected)

    def _unprotect(self, apdu: bytes) -> bytes:
        assert self.keys is not None
        if self.server_title is None:
            raise SecurityError("the meter sent no system title")
        tag, protected = unwrap_ciphered(apdu)
        _, ic, plain = unprotect(protected, self.server_title, self.keys)
        self._replay.check(self.server_title, ic)
        if not plain or PLAIN_TAG_OF.get(tag) != plain[0]:
            raise ProtocolError("apdu.tag", tag, "the ciphered tag does not match its content")
        return plain

    async def _request(self, plain: bytes) -> bytes:
        if not self.settings.ciphered:
            response = await self._exchange(plain)
        else:
            response = await self._exchange(self._protect(plain))
            if response and response[0] in PLAIN_TAG_OF:
                response = self._unprotect(response)
        if response and response[0] == xdlms.EXCEPTION_RESPONSE:
            state = response[1] if len(response) > 1 else 0
            service = response[2] if len(response) > 2 else 0
            raise DlmsServiceError("request", service, f"exception-response state {state}")
        return response

    # ------------------------------------------------------------------ association

    async def associate(self) -> None:
        """AARQ/AARE, then HLS passes 3 and 4 when the mechanism is high."""
        settings = self.settings
        initiate = InitiateRequest(CLIENT_CONFORMANCE, settings.max_pdu_size).encode()
        context = ApplicationContext.LOGICAL_NAME
        if settings.ciphered:
            context = ApplicationContext.LOGICAL_NAME_WITH_CIPHERING
            assert settings.keys is not None
            assert settings.system_title is not None
            sc = int(SecurityControl.AUTHENTICATION | SecurityControl.ENCRYPTION)
            sc |= settings.security_suite
            initiate = wrap_ciphered(
                GLOBAL_TAGS[0x01],
                protect(sc, settings.system_title, self._next_ic(), settings.keys, initiate),
            )
        ctos = None
        if settings.mechanism >= Mechanism.HIGH:
            ctos = secrets.token_bytes(32 if settings.mechanism == Mechanism.HIGH_ECDSA else 16)
        authentication = settings.password if settings.mechanism == Mechanism.LOW else ctos
        aarq = Aarq(
            context,
            initiate,
            settings.system_title if settings.ciphered else None,
            settings.mechanism,
            authentication,
        )
        octets = await self._exchange(aarq.encode())
        if not octets or octets[0] != AARE_TAG:
            raise AssociationError(f"the meter answered the AARQ with tag 0x{octets[:1].hex()}")
        aare = Aare.decode(octets)
        if aare.result != AssociationResult.ACCEPTED:
            raise AssociationError(
                f"association rejected (result {int(aare.result)}, diagnostic {aare.diagnostic})"
            )
        self.server_title = aare.responding_ap_title
        user = aare.user_information or b""
        if settings.ciphered:
            user = self._unprotect(user)
        response = InitiateResponse.decode(user)
        self.conformance = response.negotiated_conformance
        self.server_max_pdu = response.server_max_receive_pdu_size
        self.associated = True
        if settings.mechanism == Mechanism.HIGH_GMAC:
            await self._hls_gmac(aare.responding_authentication_value or b"", ctos or b"")
        elif settings.mechanism == Mechanism.HIGH_ECDSA:
            await self._hls_ecdsa(aare.responding_authentication_value or b"", ctos or b"")
        elif settings.mechanism >= Mechanism.HIGH:
            raise AssociationError(f"mechanism {settings.mechanism.name} is not supported")

    async def _hls_ecdsa(self, stoc: bytes, ctos: bytes) -> None:
        settings = self.settings
        title = settings.system_title
        if settings.signing_key is None or settings.server_verify_key is None or title is None:
            raise AssociationError("HLS-ECDSA needs this client's and the meter's signing keys")
        if self.server_title is None:
            raise AssociationError("HLS-ECDSA needs the meter's system title")
        f_stoc = ecdsa_authentication(settings.signing_key, title, self.server_title, ctos, stoc)
        result = await self.action(15, CURRENT_ASSOCIATION, 1, Data.octet_string(f_stoc))
        if result is None:
            raise SecurityError("the meter returned no f(CtoS)")
        check_ecdsa_authentication(
            result.as_bytes("f_ctos"),
            settings.server_verify_key,
            signer_title=self.server_title,
            peer_title=title,
            signer_challenge=stoc,
            peer_challenge=ctos,
        )

    async def _hls_gmac(self, stoc: bytes, ctos: bytes) -> None:
        settings = self.settings
        assert settings.keys is not None
        assert settings.system_title is not None
        if self.server_title is None:
            raise AssociationError("HLS-GMAC needs the meter's system title")
        f_stoc = gmac_authentication(settings.system_title, self._ic, settings.keys, stoc)
        result = await self.action(15, CURRENT_ASSOCIATION, 1, Data.octet_string(f_stoc))
        if result is None:
            raise SecurityError("the meter returned no f(CtoS)")
        check_gmac_authentication(result.as_bytes("f_ctos"), self.server_title, settings.keys, ctos)

    async def key_agreement(
        self,
        key_ids: tuple[int, ...] = (GlobalKeyId.UNICAST_ENCRYPTION, GlobalKeyId.AUTHENTICATION),
    ) -> dict[int, bytes]:
        """Agree new keys with the meter (security setup method 3, suite 1); return them by
        key id. The encryption and authentication keys replace this client's at once, as
        the meter's do after its response; keep them for the next association."""
        settings = self.settings
        if settings.signing_key is None or settings.server_verify_key is None:
            raise AssociationError("key agreement needs this client's and the meter's keys")
        if self.server_title is None or settings.system_title is None or self.keys is None:
            raise AssociationError("key agreement needs a ciphered association")
        ephemeral = {key_id: ec.generate_private_key(ec.SECP256R1()) for key_id in key_ids}
        request = Data.array(
            [
                Data.structure(
                    Data.enum(key_id),
                    Data.octet_string(ephemeral_key_data(key_id, key, settings.signing_key)),
                )
                for key_id, key in ephemeral.items()
            ]
        )
        answer = await self.action(64, SECURITY_SETUP, 3, request)
        if answer is None:
            raise ProtocolError("key_agreement", None, "the meter returned no keys")
        agreed: dict[int, bytes] = {}
        for item in answer.as_items("key_agreement_data"):
            key_id_data, key_data = item.as_items("key_agreement_data_item", 2)
            key_id = key_id_data.as_int("key_id")
            if key_id not in ephemeral:
                raise ProtocolError("key_agreement.key_id", key_id, "a key id that was asked")
            peer = open_ephemeral_key_data(
                key_id, key_data.as_bytes("key_data"), settings.server_verify_key
            )
            agreed[key_id] = agreed_key(
                ephemeral[key_id], peer, key_id, settings.system_title, self.server_title
            )
        if set(agreed) != set(ephemeral):
            raise ProtocolError("key_agreement", sorted(agreed), f"keys {sorted(ephemeral)}")
        self.keys = SecurityKeys(
            agreed.get(GlobalKeyId.UNICAST_ENCRYPTION, self.keys.block_cipher_key),
            agreed.get(GlobalKeyId.AUTHENTICATION, self.keys.authentication_key),
        )
        return agreed

    async def release(self) -> None:
        """RLRQ/RLRE."""
        try:
            await self._exchange(release_request())
        finally:
            self.associated = False

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()

    # ------------------------------------------------------------------ services

    async def get(
        self,
        class_id: int,
        obis: ObisCode,
        attribute: int,
        access: AccessSelection | None = None,
    ) -> Data:
        """GET one attribute, following a block transfer to its end."""
        invoke = self._next_invoke()
        request = GetRequest(invoke, AttributeDescriptor(class_id, obis, attribute), access)
        result = xdlms.decode_get_response(await self._request(xdlms.encode_get_request(request)))
        if result.error is not None:
            raise DlmsServiceError(
                f"GET {obis} attribute {attribute}", result.error, result.error.name.lower()
            )
        if result.value is not None:
            return result.value
        raw = bytearray(result.raw)
        while not result.last_block:
            assert result.block_number is not None
            octets = await self._request(xdlms.encode_get_next(invoke, result.block_number))
            result = xdlms.decode_get_response(octets)
            if result.error is not None:
                raise DlmsServiceError(f"GET {obis} block", result.error, result.error.name.lower())
            raw += result.raw
        return decode_data_exact(bytes(raw), f"{obis}.attribute_{attribute}")

    async def set(self, class_id: int, obis: ObisCode, attribute: int, value: Data) -> None:
        request = SetRequest(
            self._next_invoke(), AttributeDescriptor(class_id, obis, attribute), value
        )
        result = xdlms.decode_set_response(await self._request(xdlms.encode_set_request(request)))
        if result != DataAccessResult.SUCCESS:
            raise DlmsServiceError(f"SET {obis} attribute {attribute}", result, result.name.lower())

    async def action(
        self, class_id: int, obis: ObisCode, method: int, parameters: Data | None = None
    ) -> Data | None:
        request = ActionRequest(
            self._next_invoke(), AttributeDescriptor(class_id, obis, method), parameters
        )
        octets = await self._request(xdlms.encode_action_request(request))
        result, value, _ = xdlms.decode_action_response(octets)
        if result != ActionResult.SUCCESS:
            raise DlmsServiceError(f"ACTION {obis} method {method}", result, result.name.lower())
        return value

    # ------------------------------------------------------------------ head-end verbs

    async def read_register(self, obis: ObisCode, class_id: int = 3) -> RegisterReading:
        """A register's value and scaler_unit (classes 3, 4 and 5)."""
        value = await self.get(class_id, obis, 2)
        scaler_unit = await self.get(class_id, obis, 3)
        scaler, unit = scaler_unit.as_items("scaler_unit", 2)
        raw = value.value
        if not isinstance(raw, (int, float)) or isinstance(raw, bool):
            raise ProtocolError(f"{obis}.value", raw, "a number")
        return RegisterReading(obis, raw, scaler.as_int("scaler"), unit.as_int("unit"))

    async def read_profile(
        self, obis: ObisCode, start: datetime, end: datetime
    ) -> list[ProfileRow]:
        """Rows of a profile generic whose clock lies in ``[start, end]`` (selector 1)."""
        parameters = clock_range_selector(start, end)
        buffer = await self.get(7, obis, 2, AccessSelection(1, parameters))
        rows = []
        for row in buffer.as_items("buffer"):
            items = row.as_items("row")
            if not items:
                raise ProtocolError("row", row, "an empty profile row")
            at = decode_date_time(items[0].as_bytes("row.clock"))
            rows.append(ProfileRow(at, tuple(_python(item) for item in items[1:])))
        return rows

    async def read_event_log(
        self, obis: ObisCode, start: datetime, end: datetime
    ) -> list[tuple[datetime, int]]:
        """(time, event code) of the events of a log in ``[start, end]``."""
        rows = await self.read_profile(obis, start, end)
        events = []
        for row in rows:
            code = row.values[0] if row.values else None
            if not isinstance(code, int):
                raise ProtocolError("event.code", code, "an event code")
            events.append((row.at, code))
        return events

    async def read_clock(self) -> datetime:
        value = await self.get(8, CLOCK, 2)
        return decode_date_time(value.as_bytes("clock.time"))

    async def set_clock(self, moment: datetime) -> None:
        """Set the meter's clock (the meter logs the adjustment)."""
        await self.set(8, CLOCK, 2, date_time_data(moment))

    async def disconnect(self) -> None:
        await self.action(70, DISCONNECT_CONTROL, 1, Data.integer(0))

    async def reconnect(self) -> None:
        await self.action(70, DISCONNECT_CONTROL, 2, Data.integer(0))

    async def relay_state(self) -> int:
        """Attribute 3 of the disconnect control: 0 disconnected, 1 connected, 2 ready."""
        return (await self.get(70, DISCONNECT_CONTROL, 3)).as_int("control_state")

    async def transfer_image(
        self, identifier: bytes, image: bytes, *, activate: bool = True
    ) -> int:
        """Send ``image`` through the image transfer object (class 18) and verify it, then
        activate it; return ``image_transfer_status`` (6: activated, 3: verified).

        A transfer of the same identifier and size that was interrupted resumes from the
        first block the meter lacks. Raises :class:`DlmsServiceError` when the meter
        refuses a step (a verification failure leaves status 4 on the meter).
        """
        block_size = (await self.get(18, IMAGE_TRANSFER, 2)).as_int("image_block_size")
        if block_size <= 0:
            raise ProtocolError("image_block_size", block_size, "a positive block size")
        await self.action(
            18,
            IMAGE_TRANSFER,
            1,
            Data.structure(Data.octet_string(identifier), Data.double_long_unsigned(len(image))),
        )
        first = (await self.get(18, IMAGE_TRANSFER, 4)).as_int("first_not_transferred")
        count = (len(image) + block_size - 1) // block_size
        for number in range(first, count):
            block = image[number * block_size : (number + 1) * block_size]
            await self.action(
                18,
                IMAGE_TRANSFER,
                2,
                Data.structure(Data.double_long_unsigned(number), Data.octet_string(block)),
            )
        await self.action(18, IMAGE_TRANSFER, 3, Data.integer(0))
        if activate:
            await self.action(18, IMAGE_TRANSFER, 4, Data.integer(0))
        return (await self.get(18, IMAGE_TRANSFER, 6)).as_int("image_transfer_status")

    async def enter_token(self, token: str) -> tuple[int, str]:
        """Enter an STS token; return the token status code and the meter's description.

        Status 3 is *token execution OK*; 4-7 are the failures of Blue Book 4.6.6.
        """
        digits = "".join(token.split())
        await self.action(115, TOKEN_GATEWAY, 1, Data.octet_string(digits.encode("ascii")))
        status = await self.get(115, TOKEN_GATEWAY, 6)
        code = status.as_items("token_status", 2)[0].as_int("status_code")
        description = await self.get(115, TOKEN_GATEWAY, 4)
        texts = [item.as_bytes("token_description") for item in description.as_items("d")]
        return code, b" ".join(texts).decode("utf-8", "replace")
