"""The DLMS/COSEM server of the virtual meter: associations, services and the TCP wrapper.

:class:`Association` is the application layer of one client connection, bytes in and bytes
out: it opens the association (AARQ/AARE with lowest, low or high-level GMAC or ECDSA
authentication, with or without ciphering), checks and removes the security of every
ciphered APDU (the logical device's suite, 0 or 1; replayed invocation counters
refused), and serves GET (with selective access and block transfer), SET and ACTION on
the meter's object list.
Malformed, unknown or unauthorised requests are answered with the protocol's own error
(AARE rejection, data-access or action result, EXCEPTION-Response) and the server carries
on.

:class:`DlmsServer` runs one or more logical devices (meters) behind one TCP port with the
IEC 62056-47 wrapper; the destination wPort picks the logical device.

Client associations (defaults; every value comes from the meter's TOML file):

===== ============== ================= ===========================================
SAP   name           mechanism         context
===== ============== ================= ===========================================
16    public client   lowest (none)     LN, no ciphering; GET only
17    reader         low (password)    LN, no ciphering
1     management     high, GMAC (5)    LN with ciphering, suite 0
                     or ECDSA (7)      LN with ciphering, suite 1
===== ============== ================= ===========================================

With suite 1 the server holds its own ECDSA P-256 signing key and the public signing key
of each client system title it trusts (what certificates carry; the keys are installed,
not certificates).

References
----------
.. [1] IEC 62056-5-3:2017 (Green Book ed. 8), 9.3 the xDLMS services, 9.2.7 the security
   mechanisms, 10.8 the TCP-UDP/IP profile.
.. [2] IEC 62056-6-2:2017 (Blue Book ed. 12), 4.4.3 Association LN.
.. [3] IEC 62056-47:2006 the wrapper.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from meterstack.core.errors import MeterstackError
from meterstack.core.obis import ObisCode
from meterstack.core.time import Clock
from meterstack.link.firmware import FirmwareSlot
from meterstack.meter import Meter
from meterstack.protocols.dlms import apdu as xdlms
from meterstack.protocols.dlms.acse import (
    AARQ_TAG,
    RLRQ_TAG,
    Aare,
    Aarq,
    AcseDiagnostic,
    ApplicationContext,
    AssociationResult,
    Conformance,
    InitiateRequest,
    InitiateResponse,
    Mechanism,
    initiate_error,
    release_response,
)
from meterstack.protocols.dlms.apdu import (
    ActionRequest,
    ActionResult,
    DataAccessResult,
    GetNextRequest,
    GetRequest,
    ServiceError,
    SetRequest,
    StateError,
)
from meterstack.protocols.dlms.axdr import encode_data
from meterstack.protocols.dlms.cosem.base import (
    CosemError,
    CosemObject,
    MeterBinding,
    ServiceContext,
)
from meterstack.protocols.dlms.cosem.objects import CURRENT_ASSOCIATION, build_object_list
from meterstack.protocols.dlms.security import (
    GLOBAL_TAGS,
    PLAIN_TAG_OF,
    ReplayGuard,
    SecurityControl,
    SecurityKeys,
    SecuritySuite,
    check_ecdsa_authentication,
    check_gmac_authentication,
    ecdsa_authentication,
    gmac_authentication,
    protect,
    unprotect,
    unwrap_ciphered,
    wrap_ciphered,
)
from meterstack.protocols.dlms.wrapper import WrapperFramer, encode_frame
from meterstack.protocols.errors import ProtocolError, SecurityError

log = logging.getLogger(__name__)

SERVER_CONFORMANCE = (
    Conformance.GET
    | Conformance.SET
    | Conformance.ACTION
    | Conformance.SELECTIVE_ACCESS
    | Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ
)
#: Octets kept free in a block for the response header and the security envelope.
_BLOCK_OVERHEAD = 40
_MIN_PDU = 64


@dataclass(frozen=True, slots=True)
class ClientPolicy:
    """What one client SAP must present to associate."""

    sap: int
    mechanism: Mechanism
    ciphered: bool = False


#: Security policy (security setup version 1): authenticated and encrypted requests and
#: responses, bits 2, 3, 5 and 6 [2]_ 4.4.7.
POLICY_AUTHENTICATED_ENCRYPTED = 0x04 | 0x08 | 0x20 | 0x40


@dataclass
class DlmsSecurity:
    """The server's security material, shared by its associations (Blue Book class 64).

    ``signing_key`` (the server's ECDSA P-256 key) and ``client_verify_keys`` (the public
    signing key of each trusted client system title) are needed for suite 1: HLS
    mechanism 7 and key agreement.
    """

    server_system_title: bytes
    keys: SecurityKeys
    master_key: bytes
    lls_password: bytes
    security_suite: int = SecuritySuite.AES_GCM_128
    security_policy: int = POLICY_AUTHENTICATED_ENCRYPTED
    invocation_counter: int = 0
    replay: ReplayGuard = field(default_factory=ReplayGuard)
    last_client_title: bytes | None = None
    signing_key: ec.EllipticCurvePrivateKey | None = None
    client_verify_keys: dict[bytes, ec.EllipticCurvePublicKey] = field(default_factory=dict)
    #: Keys a method installed; they take effect once its response has been protected.
    pending_keys: SecurityKeys | None = None

    def __post_init__(self) -> None:
        if self.security_suite not in (
            SecuritySuite.AES_GCM_128,
            SecuritySuite.ECDH_ECDSA_AES_GCM_128_SHA_256,
        ):
            raise ProtocolError("security_suite", self.security_suite, "suite 0 or 1")
        if (
            self.security_suite == SecuritySuite.ECDH_ECDSA_AES_GCM_128_SHA_256
            and self.signing_key is None
        ):
            raise ProtocolError("signing_key", None, "suite 1 needs the server's P-256 key")
        for title in self.client_verify_keys:
            if len(title) != 8:
                raise ProtocolError("client_verify_keys", title.hex(), "8-octet system titles")

    def client_system_title(self) -> bytes | None:
        return self.last_client_title

    def apply_pending_keys(self) -> None:
        if self.pending_keys is not None:
            self.keys, self.pending_keys = self.pending_keys, None

    def next_invocation_counter(self) -> int:
        self.invocation_counter += 1
        return self.invocation_counter


@dataclass
class LogicalDevice:
    """One meter on the wire: its object list and its security material.

    ``firmware_verify_key`` (the vendor's P-256 key) lets the image transfer object verify
    images; ``firmware`` is the meter's firmware slot, if it has one.
    """

    binding: MeterBinding
    security: DlmsSecurity
    clients: dict[int, ClientPolicy]
    max_pdu_size: int = 1024
    objects: list[CosemObject] = field(default_factory=list)
    by_name: dict[ObisCode, CosemObject] = field(default_factory=dict)
    firmware_verify_key: ec.EllipticCurvePublicKey | None = None
    firmware: FirmwareSlot | None = None

    def __post_init__(self) -> None:
        if not self.objects:
            self.objects = build_object_list(
                self.binding.meter,
                self.security,
                firmware_verify_key=self.firmware_verify_key,
                firmware=self.firmware,
            )
        self.by_name = {obj.logical_name: obj for obj in self.objects}

    @classmethod
    def for_meter(
        cls,
        meter: Meter,
        clock: Clock,
        security: DlmsSecurity,
        clients: Iterable[ClientPolicy],
        max_pdu_size: int = 1024,
        *,
        firmware_verify_key: ec.EllipticCurvePublicKey | None = None,
        firmware: FirmwareSlot | None = None,
    ) -> LogicalDevice:
        return cls(
            MeterBinding(meter, clock),
            security,
            {client.sap: client for client in clients},
            max_pdu_size,
            firmware_verify_key=firmware_verify_key,
            firmware=firmware,
        )


def default_clients(
    public: int = 16, reader: int = 17, management: int = 1, *, security_suite: int = 0
) -> tuple[ClientPolicy, ...]:
    """Public (lowest), reader (LLS) and management clients; the management client uses
    HLS-GMAC with suite 0 and HLS-ECDSA with suite 1."""
    management_mechanism = (
        Mechanism.HIGH_ECDSA
        if security_suite == SecuritySuite.ECDH_ECDSA_AES_GCM_128_SHA_256
        else Mechanism.HIGH_GMAC
    )
    return (
        ClientPolicy(public, Mechanism.LOWEST),
        ClientPolicy(reader, Mechanism.LOW),
        ClientPolicy(management, management_mechanism, ciphered=True),
    )


class Association:
    """The application layer of one connection of one client to one logical device."""

    def __init__(self, device: LogicalDevice, client_sap: int, server_sap: int) -> None:
        self.device = device
        self.client_sap = client_sap
        self.server_sap = server_sap
        self.policy = device.clients.get(client_sap)
        self.open = False
        self.authenticated = False
        self.mechanism = int(Mechanism.LOWEST)
        self.application_context = int(ApplicationContext.LOGICAL_NAME)
        self.client_title: bytes | None = None
        self.conformance = 0
        self.client_max_pdu = 0
        self._ctos = b""
        self._stoc = b""
        self._pending_blocks: list[bytes] = []
        self._block_invoke = 0
        self._block_number = 0
        self.context = ServiceContext(device.binding, self, device.objects)

    # ------------------------------------------------------------------ entry point

    def handle(self, apdu: bytes) -> bytes | None:
        """Answer one APDU from the client (``None``: nothing to send)."""
        if not apdu:
            return xdlms.exception_response(StateError.SERVICE_UNKNOWN, ServiceError.OTHER_REASON)
        tag = apdu[0]
        if tag == AARQ_TAG:
            return self._associate(apdu)
        if tag == RLRQ_TAG:
            self._release()
            return release_response()
        if not self.open:
            return xdlms.exception_response(
                StateError.SERVICE_NOT_ALLOWED, ServiceError.OPERATION_NOT_POSSIBLE
            )
        if tag in PLAIN_TAG_OF:
            return self._ciphered(apdu)
        if self.policy is not None and self.policy.ciphered:
            # A ciphered association takes only protected requests (security policy).
            return xdlms.exception_response(
                StateError.SERVICE_NOT_ALLOWED, ServiceError.DECIPHERING_ERROR
            )
        response = self._serve(apdu)
        self.device.security.apply_pending_keys()
        return response

    # ------------------------------------------------------------------ association

    def _reject(
        self,
        diagnostic: AcseDiagnostic,
        context: ApplicationContext = ApplicationContext.LOGICAL_NAME,
        user_information: bytes | None = None,
    ) -> bytes:
        self._release()
        return Aare(
            context,
            AssociationResult.REJECTED_PERMANENT,
            int(diagnostic),
            user_information,
        ).encode()

    def _release(self) -> None:
        self.open = False
        self.authenticated = False
        self._pending_blocks = []

    def _associate(self, octets: bytes) -> bytes:
        self._release()
        try:
            aarq = Aarq.decode(octets)
        except ProtocolError as exc:
            log.info("AARQ refused: %s", exc)
            return self._reject(AcseDiagnostic.NO_REASON_GIVEN)
        policy = self.policy
        if policy is None:
            return self._reject(AcseDiagnostic.NO_REASON_GIVEN, aarq.application_context)
        wanted_context = (
            ApplicationContext.LOGICAL_NAME_WITH_CIPHERING
            if policy.ciphered
            else ApplicationContext.LOGICAL_NAME
        )
        if aarq.application_context != wanted_context:
            return self._reject(
                AcseDiagnostic.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED, aarq.application_context
            )
        mechanism = aarq.mechanism or Mechanism.LOWEST
        if mechanism != policy.mechanism:
            diagnostic = (
                AcseDiagnostic.AUTHENTICATION_MECHANISM_NAME_REQUIRED
                if mechanism == Mechanism.LOWEST
                else AcseDiagnostic.AUTHENTICATION_MECHANISM_NAME_NOT_RECOGNISED
            )
            return self._reject(diagnostic, wanted_context)
        security = self.device.security
        if mechanism == Mechanism.LOW and not hmac.compare_digest(
            aarq.calling_authentication_value or b"", security.lls_password
        ):
            return self._reject(AcseDiagnostic.AUTHENTICATION_FAILURE, wanted_context)
        if mechanism in (Mechanism.HIGH_GMAC, Mechanism.HIGH_ECDSA):
            challenge = aarq.calling_authentication_value or b""
            if not 8 <= len(challenge) <= 64:
                return self._reject(AcseDiagnostic.AUTHENTICATION_FAILURE, wanted_context)
            self._ctos = challenge
        if mechanism == Mechanism.HIGH_ECDSA and (
            security.security_suite != SecuritySuite.ECDH_ECDSA_AES_GCM_128_SHA_256
            or aarq.calling_ap_title not in security.client_verify_keys
        ):
            # mechanism 7 needs suite 1 and a client whose signing key the meter holds
            return self._reject(AcseDiagnostic.AUTHENTICATION_FAILURE, wanted_context)
        if mechanism == Mechanism.HIGH_ECDSA:
            self.client_title = aarq.calling_ap_title  # signed over, ciphered or not

        user = aarq.user_information
        ciphered = policy.ciphered
        try:
            if ciphered:
                title = aarq.calling_ap_title
                if title is None or len(title) != 8:
                    return self._reject(AcseDiagnostic.AUTHENTICATION_FAILURE, wanted_context)
                tag, protected = unwrap_ciphered(user)
                if tag != GLOBAL_TAGS[0x01]:
                    raise ProtocolError("aarq.user_information", tag, "a glo-initiate-request")
                self._check_suite(protected)
                _, ic, user = unprotect(protected, title, security.keys)
                security.replay.check(title, ic)
                self.client_title = title
                security.last_client_title = title
            request = InitiateRequest.decode(user)
        except SecurityError as exc:
            log.info("AARQ from SAP %s refused: %s", self.client_sap, exc)
            return self._reject(AcseDiagnostic.AUTHENTICATION_FAILURE, wanted_context)
        except ProtocolError as exc:
            log.info("AARQ from SAP %s refused: %s", self.client_sap, exc)
            return self._reject(AcseDiagnostic.NO_REASON_GIVEN, wanted_context, initiate_error(0))
        if request.dlms_version < 6:
            return self._reject(AcseDiagnostic.NO_REASON_GIVEN, wanted_context, initiate_error(1))
        if request.client_max_receive_pdu_size and request.client_max_receive_pdu_size < _MIN_PDU:
            return self._reject(AcseDiagnostic.NO_REASON_GIVEN, wanted_context, initiate_error(3))
        self.conformance = request.proposed_conformance & SERVER_CONFORMANCE
        self.client_max_pdu = request.client_max_receive_pdu_size or 0xFFFF
        response = InitiateResponse(self.conformance, self.device.max_pdu_size).encode()
        if ciphered:
            response = self._protect_response(
                0x08, response, SecurityControl.AUTHENTICATION | SecurityControl.ENCRYPTION
            )
        self.application_context = int(wanted_context)
        self.mechanism = int(mechanism)
        self.open = True
        diagnostic = AcseDiagnostic.NULL
        stoc = None
        if mechanism >= Mechanism.HIGH:
            # 32 octets for ECDSA (as long as the curve's order), 16 for GMAC
            size = 32 if mechanism == Mechanism.HIGH_ECDSA else 16
            self._stoc = stoc = secrets.token_bytes(size)
            diagnostic = AcseDiagnostic.AUTHENTICATION_REQUIRED
        else:
            self.authenticated = mechanism == Mechanism.LOW
        return Aare(
            wanted_context,
            AssociationResult.ACCEPTED,
            int(diagnostic),
            response,
            security.server_system_title if ciphered or mechanism >= Mechanism.HIGH else None,
            mechanism,
            stoc,
        ).encode()

    def reply_to_hls(self, f_stoc: bytes) -> bytes:
        """Pass 3 and 4 of HLS: check ``f(StoC)`` and answer ``f(CtoS)`` (GMAC or ECDSA)."""
        hls = (Mechanism.HIGH_GMAC, Mechanism.HIGH_ECDSA)
        if self.mechanism not in hls or not self._stoc or self.client_title is None:
            raise SecurityError("no HLS authentication is pending")
        security = self.device.security
        stoc, self._stoc = self._stoc, b""
        if self.mechanism == Mechanism.HIGH_ECDSA:
            verify_key = security.client_verify_keys.get(self.client_title)
            if verify_key is None or security.signing_key is None:
                raise SecurityError("HLS-ECDSA needs both parties' signing keys")
            check_ecdsa_authentication(
                f_stoc,
                verify_key,
                signer_title=self.client_title,
                peer_title=security.server_system_title,
                signer_challenge=self._ctos,
                peer_challenge=stoc,
            )
            self.authenticated = True
            return ecdsa_authentication(
                security.signing_key,
                security.server_system_title,
                self.client_title,
                stoc,
                self._ctos,
            )
        check_gmac_authentication(f_stoc, self.client_title, security.keys, stoc)
        self.authenticated = True
        return gmac_authentication(
            security.server_system_title,
            security.next_invocation_counter(),
            security.keys,
            self._ctos,
        )

    # ------------------------------------------------------------------ ciphering

    def _protect_response(self, plain_tag: int, octets: bytes, sc: int) -> bytes:
        security = self.device.security
        sc = (sc & 0xF0) | security.security_suite
        protected = protect(
            sc,
            security.server_system_title,
            security.next_invocation_counter(),
            security.keys,
            octets,
        )
        return wrap_ciphered(GLOBAL_TAGS[plain_tag], protected)

    def _check_suite(self, protected: bytes) -> None:
        """A protected APDU must carry the logical device's security suite."""
        suite = self.device.security.security_suite
        if protected and protected[0] & 0x0F != suite:
            raise ProtocolError("security_control", protected[0], f"security suite {suite}")

    def _ciphered(self, apdu: bytes) -> bytes:
        security = self.device.security
        if self.client_title is None:
            return xdlms.exception_response(
                StateError.SERVICE_NOT_ALLOWED, ServiceError.DECIPHERING_ERROR
            )
        try:
            tag, protected = unwrap_ciphered(apdu)
            if tag not in (0xC8, 0xC9, 0xCB):
                raise ProtocolError("apdu.tag", tag, "a glo-get, glo-set or glo-action request")
            self._check_suite(protected)
            sc, ic, plain = unprotect(protected, self.client_title, security.keys)
        except ProtocolError:
            return xdlms.exception_response(StateError.SERVICE_UNKNOWN, ServiceError.OTHER_REASON)
        except SecurityError as exc:
            log.info("deciphering failed for SAP %s: %s", self.client_sap, exc)
            return xdlms.exception_response(
                StateError.SERVICE_NOT_ALLOWED, ServiceError.DECIPHERING_ERROR
            )
        try:
            security.replay.check(self.client_title, ic)
        except SecurityError as exc:
            log.info("replay refused for SAP %s: %s", self.client_sap, exc)
            return xdlms.exception_response(
                StateError.SERVICE_NOT_ALLOWED, ServiceError.INVOCATION_COUNTER_ERROR
            )
        if not plain or PLAIN_TAG_OF.get(tag) != plain[0]:
            return xdlms.exception_response(StateError.SERVICE_UNKNOWN, ServiceError.OTHER_REASON)
        response = self._serve(plain)
        if response[0] == xdlms.EXCEPTION_RESPONSE:
            return response
        protected = self._protect_response(response[0], response, sc)
        security.apply_pending_keys()  # keys a method installed act after its response
        return protected

    # ------------------------------------------------------------------ services

    def _serve(self, apdu: bytes) -> bytes:
        try:
            request = xdlms.decode_request(apdu)
        except ProtocolError as exc:
            log.info("request refused: %s", exc)
            known = apdu[0] in (xdlms.GET_REQUEST, xdlms.SET_REQUEST, xdlms.ACTION_REQUEST)
            return xdlms.exception_response(
                StateError.SERVICE_NOT_ALLOWED if known else StateError.SERVICE_UNKNOWN,
                ServiceError.OTHER_REASON if known else ServiceError.SERVICE_NOT_SUPPORTED,
            )
        if not self.authenticated and not self._hls_pass_three(request):
            return self._refuse_unauthenticated(request)
        if isinstance(request, GetRequest):
            return self._get(request)
        if isinstance(request, GetNextRequest):
            return self._get_next(request)
        if isinstance(request, SetRequest):
            return self._set(request)
        return self._action(request)

    def _hls_pass_three(self, request: xdlms.Request) -> bool:
        if self.mechanism < Mechanism.HIGH:
            return isinstance(request, (GetRequest, GetNextRequest))  # public client reads
        return (
            isinstance(request, ActionRequest)
            and request.descriptor.class_id == 15
            and request.descriptor.instance == CURRENT_ASSOCIATION
            and request.descriptor.index == 1
        )

    def _refuse_unauthenticated(self, request: xdlms.Request) -> bytes:
        invoke = request.invoke_id
        if isinstance(request, (GetRequest, GetNextRequest)):
            return xdlms.get_response_error(invoke, DataAccessResult.READ_WRITE_DENIED)
        if isinstance(request, SetRequest):
            return xdlms.set_response(invoke, DataAccessResult.READ_WRITE_DENIED)
        return xdlms.action_response(invoke, ActionResult.READ_WRITE_DENIED)

    def _lookup(self, class_id: int, name: ObisCode) -> CosemObject:
        obj = self.device.by_name.get(name)
        if obj is None:
            raise CosemError(DataAccessResult.OBJECT_UNDEFINED, f"no object {name}")
        if obj.class_id != class_id:
            raise CosemError(
                DataAccessResult.OBJECT_CLASS_INCONSISTENT, f"{name} is class {obj.class_id}"
            )
        return obj

    def _get(self, request: GetRequest) -> bytes:
        self._pending_blocks = []
        descriptor = request.descriptor
        try:
            obj = self._lookup(descriptor.class_id, descriptor.instance)
            value = obj.get(descriptor.index, self.context, request.access)
            encoded = encode_data(value)
        except CosemError as exc:
            return xdlms.get_response_error(request.invoke_id, DataAccessResult(exc.result))
        except MeterstackError as exc:
            log.warning("GET %s failed: %s", descriptor, exc)
            return xdlms.get_response_error(request.invoke_id, DataAccessResult.OTHER_REASON)
        limit = min(self.client_max_pdu, 0xFFFF)
        if len(encoded) + 4 + _BLOCK_OVERHEAD <= limit:
            return xdlms.get_response_data(request.invoke_id, encoded)
        if not self.conformance & Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ:
            return xdlms.get_response_error(request.invoke_id, DataAccessResult.OTHER_REASON)
        size = max(limit - _BLOCK_OVERHEAD, 16)
        blocks = [encoded[i : i + size] for i in range(0, len(encoded), size)]
        self._pending_blocks = blocks
        self._block_invoke = request.invoke_id
        self._block_number = 1
        return xdlms.get_response_block(request.invoke_id, len(blocks) == 1, 1, blocks[0])

    def _get_next(self, request: GetNextRequest) -> bytes:
        if not self._pending_blocks:
            return xdlms.get_response_block_error(
                request.invoke_id, request.block_number, DataAccessResult.NO_LONG_GET_IN_PROGRESS
            )
        if request.block_number != self._block_number:
            self._pending_blocks = []
            return xdlms.get_response_block_error(
                request.invoke_id, request.block_number, DataAccessResult.DATA_BLOCK_NUMBER_INVALID
            )
        self._block_number += 1
        number = self._block_number
        block = self._pending_blocks[number - 1]
        last = number == len(self._pending_blocks)
        if last:
            self._pending_blocks = []
        return xdlms.get_response_block(request.invoke_id, last, number, block)

    def _set(self, request: SetRequest) -> bytes:
        descriptor = request.descriptor
        try:
            obj = self._lookup(descriptor.class_id, descriptor.instance)
            if request.access is not None:
                raise CosemError(DataAccessResult.SCOPE_OF_ACCESS_VIOLATED, "no selective set")
            obj.set(descriptor.index, request.value, self.context)
        except CosemError as exc:
            return xdlms.set_response(request.invoke_id, DataAccessResult(exc.result))
        except MeterstackError as exc:
            log.warning("SET %s failed: %s", descriptor, exc)
            return xdlms.set_response(request.invoke_id, DataAccessResult.OTHER_REASON)
        return xdlms.set_response(request.invoke_id, DataAccessResult.SUCCESS)

    def _action(self, request: ActionRequest) -> bytes:
        descriptor = request.descriptor
        try:
            obj = self._lookup(descriptor.class_id, descriptor.instance)
            value = obj.action(descriptor.index, request.parameters, self.context)
        except CosemError as exc:
            return xdlms.action_response(request.invoke_id, ActionResult(exc.result))
        except MeterstackError as exc:
            log.warning("ACTION %s failed: %s", descriptor, exc)
            return xdlms.action_response(request.invoke_id, ActionResult.OTHER_REASON)
        return xdlms.action_response(
            request.invoke_id,
            ActionResult.SUCCESS,
            None if value is None else encode_data(value),
        )


# ---------------------------------------------------------------------- TCP


class DlmsServer:
    """Serve logical devices over TCP with the IEC 62056-47 wrapper [3]_.

    ``devices`` maps a server wPort (SAP) to its meter. Each TCP connection may hold one
    association per (client, server) address pair.
    """

    def __init__(self, devices: dict[int, LogicalDevice], *, idle_timeout_s: float = 120.0):
        self.devices = devices
        self.idle_timeout_s = idle_timeout_s
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[Any]] = set()

    async def start(self, host: str = "127.0.0.1", port: int = 4059) -> int:
        """Listen on ``host:port`` (0 picks a free port); return the port."""
        self._server = await asyncio.start_server(self._connection, host, port)
        return int(self._server.sockets[0].getsockname()[1])

    async def serve_forever(self) -> None:
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            for task in list(self._connections):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self._server.wait_closed()
            self._server = None

    def respond(
        self,
        associations: dict[tuple[int, int], Association],
        source: int,
        destination: int,
        apdu: bytes,
    ) -> bytes | None:
        """The wrapper frame answering one received frame (``None``: drop it)."""
        device = self.devices.get(destination)
        if device is None:
            return None
        key = (source, destination)
        association = associations.get(key)
        if association is None:
            association = associations[key] = Association(device, source, destination)
        try:
            response = association.handle(apdu)
        except Exception:  # a bug must not take the meter off the network
            log.exception("unexpected failure answering SAP %s", source)
            response = xdlms.exception_response(
                StateError.SERVICE_NOT_ALLOWED, ServiceError.OTHER_REASON
            )
        if response is None:
            return None
        return encode_frame(destination, source, response)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        framer = WrapperFramer()
        associations: dict[tuple[int, int], Association] = {}
        try:
            while True:
                async with asyncio.timeout(self.idle_timeout_s):
                    chunk = await reader.read(65536)
                if not chunk:
                    break
                try:
                    frames = framer.feed(chunk)
                except ProtocolError as exc:
                    log.info("closing a connection: %s", exc)
                    break
                for frame in frames:
                    out = self.respond(associations, frame.source, frame.destination, frame.apdu)
                    if out is not None:
                        writer.write(out)
                await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # the server is closing: end this connection quietly
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
