"""Interface classes 15 "Association LN" and 64 "Security setup".

Association LN, 0.0.40.0.0.255 (the current association): 2 ``object_list`` (each object's
class, version, logical name and access rights for this client), 3
``associated_partners_id`` {client SAP, server SAP}, 4 ``application_context_name``, 5
``xDLMS_context_info``, 6 ``authentication_mechanism_name``, 8 ``association_status``
(2: associated); method 1 ``reply_to_HLS_authentication`` carries passes 3 and 4 of HLS.

Security setup (version 1), 0.0.43.0.0.255: 2 ``security_policy`` (bits: 2 authenticated
requests, 3 encrypted requests, 5 authenticated responses, 6 encrypted responses), 3
``security_suite``, 4 ``client_system_title``, 5 ``server_system_title``, 6
``certificates`` (empty: this meter holds its partners' public keys, installed at
commissioning, not X.509 certificates). Methods:

* 1 ``security_activate``: the policy may only gain bits;
* 2 ``global_key_transfer``: an array of {key_id, wrapped key}, the keys wrapped by the
  master key (KEK) under RFC 3394 AES key wrap;
* 3 ``key_agreement`` (suite 1): an array of {key_id, ``Q_e || signature``}; the meter
  answers with its own ephemeral key and signature for each, and both sides derive the
  key (Ephemeral Unified Model, :func:`~meterstack.protocols.dlms.security.agreed_key`).

New keys take effect once the response carrying the method's result has been protected
with the old ones; the key methods need a high-level (HLS) association.

References
----------
.. [1] IEC 62056-6-2:2017 (Blue Book ed. 12), 4.4.3 "Association LN" (class_id 15), 4.4.7
   "Security setup" (class_id 64).
.. [2] IEC 62056-5-3:2017 (Green Book ed. 8), 9.2.7.4 HLS, 9.2.5 key transfer.
.. [3] RFC 3394, AES key wrap.
"""

from __future__ import annotations

from typing import Protocol

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap

from meterstack.core.errors import MeterstackError
from meterstack.core.obis import ObisCode
from meterstack.protocols.dlms.acse import Mechanism
from meterstack.protocols.dlms.apdu import AccessSelection, ActionResult
from meterstack.protocols.dlms.axdr import Data, DataType
from meterstack.protocols.dlms.cosem.base import (
    CosemError,
    CosemObject,
    ServiceContext,
    type_unmatched,
)
from meterstack.protocols.dlms.security import (
    GlobalKeyId,
    SecurityKeys,
    SecuritySuite,
    agreed_key,
    ephemeral_key_data,
    open_ephemeral_key_data,
)
from meterstack.protocols.errors import ProtocolError, SecurityError

_CONTEXT_OID = bytes.fromhex("60857405080101")


class HlsResponder(Protocol):
    def reply_to_hls(self, f_stoc: bytes) -> bytes: ...


class SecurityState(Protocol):
    """The server's keys and titles, shared by its associations."""

    keys: SecurityKeys
    master_key: bytes
    server_system_title: bytes
    security_suite: int
    security_policy: int
    signing_key: ec.EllipticCurvePrivateKey | None
    client_verify_keys: dict[bytes, ec.EllipticCurvePublicKey]
    pending_keys: SecurityKeys | None

    def client_system_title(self) -> bytes | None: ...


class AssociationLN(CosemObject):
    class_id = 15
    version = 1
    attribute_count = 8
    methods = frozenset({1})

    def read(self, attribute: int, ctx: ServiceContext, access: AccessSelection | None) -> Data:
        association = ctx.association
        if attribute == 2:
            return Data.array([self._entry(obj, association.authenticated) for obj in ctx.objects])
        if attribute == 3:
            return Data.structure(
                Data.integer(association.client_sap), Data.long_unsigned(association.server_sap)
            )
        if attribute == 4:
            return Data.octet_string(_CONTEXT_OID[:-1] + bytes((association.application_context,)))
        if attribute == 5:
            return Data.structure(
                Data(DataType.BIT_STRING, "0" * 24),
                Data.long_unsigned(0),
                Data.long_unsigned(0),
                Data.unsigned(6),
                Data.integer(0),
                Data.octet_string(b""),
            )
        if attribute == 6:
            return Data.octet_string(
                bytes.fromhex("608574050802") + bytes((association.mechanism,))
            )
        if attribute == 7:
            raise CosemError(3, "the secret is never read")
        return Data.enum(2)

    @staticmethod
    def _entry(obj: CosemObject, authenticated: bool) -> Data:
        attributes = []
        for index in range(1, obj.attribute_count + 1):
            mode = 3 if authenticated and index in obj.writable else 1
            selectors = (
                Data.array([Data.integer(1), Data.integer(2)])
                if index in obj.selective
                else Data.null()
            )
            attributes.append(Data.structure(Data.integer(index), Data.enum(mode), selectors))
        methods = [
            Data.structure(Data.integer(index), Data.enum(1 if authenticated else 0))
            for index in sorted(obj.methods)
        ]
        return Data.structure(
            Data.long_unsigned(obj.class_id),
            Data.unsigned(obj.version),
            Data.octet_string(obj.logical_name.to_bytes()),
            Data.structure(Data.array(attributes), Data.array(methods)),
        )

    def invoke(self, method: int, parameters: Data | None, ctx: ServiceContext) -> Data | None:
        if parameters is None:
            raise type_unmatched("reply_to_HLS_authentication takes an octet-string")
        responder = ctx.association
        if not hasattr(responder, "reply_to_hls"):
            raise CosemError(ActionResult.READ_WRITE_DENIED, "no HLS in progress")
        try:
            reply = responder.reply_to_hls(parameters.as_bytes("f_stoc"))
        except SecurityError as exc:
            raise CosemError(ActionResult.READ_WRITE_DENIED, str(exc)) from exc
        return Data.octet_string(reply)


class SecuritySetupObject(CosemObject):
    class_id = 64
    version = 1
    attribute_count = 6
    methods = frozenset({1, 2, 3})

    def __init__(self, logical_name: ObisCode, security: SecurityState) -> None:
        super().__init__(logical_name)
        self.security = security

    def read(self, attribute: int, ctx: ServiceContext, access: AccessSelection | None) -> Data:
        security = self.security
        if attribute == 2:
            return Data.enum(security.security_policy)
        if attribute == 3:
            return Data.enum(security.security_suite)
        if attribute == 4:
            return Data.octet_string(security.client_system_title() or b"")
        if attribute == 5:
            return Data.octet_string(security.server_system_title)
        return Data.array([])

    def invoke(self, method: int, parameters: Data | None, ctx: ServiceContext) -> Data | None:
        association = ctx.association
        if not association.authenticated or association.mechanism < Mechanism.HIGH:
            raise CosemError(ActionResult.READ_WRITE_DENIED, "keys change only under HLS")
        if parameters is None:
            raise type_unmatched(f"security setup method {method} takes a parameter")
        try:
            if method == 1:
                self._activate(parameters)
                return None
            if method == 2:
                self._key_transfer(parameters)
                return None
            return self._key_agreement(parameters, association.client_title)
        except (ProtocolError, SecurityError) as exc:
            raise CosemError(ActionResult.READ_WRITE_DENIED, str(exc)) from exc
        except MeterstackError as exc:
            raise type_unmatched(str(exc)) from exc

    def _activate(self, parameters: Data) -> None:
        policy = parameters.as_int("security_policy")
        current = self.security.security_policy
        if policy & current != current or not 0 <= policy <= 0xFF:
            raise CosemError(ActionResult.OTHER_REASON, "the policy may only gain bits")
        self.security.security_policy = policy

    def _key_transfer(self, parameters: Data) -> None:
        block_key = self.security.keys.block_cipher_key
        authentication_key = self.security.keys.authentication_key
        master_key = self.security.master_key
        for item in parameters.as_items("key_data"):
            key_id, wrapped = item.as_items("key_data_item", 2)
            identifier = key_id.as_int("key_id")
            try:
                key = aes_key_unwrap(self.security.master_key, wrapped.as_bytes("key_wrapped"))
            except (InvalidUnwrap, ValueError) as exc:
                raise CosemError(
                    ActionResult.OTHER_REASON, "the key is not wrapped under the KEK"
                ) from exc
            if len(key) != 16:
                raise CosemError(ActionResult.OTHER_REASON, "an AES-128 key is 16 octets")
            if identifier == GlobalKeyId.UNICAST_ENCRYPTION:
                block_key = key
            elif identifier == GlobalKeyId.AUTHENTICATION:
                authentication_key = key
            elif identifier == GlobalKeyId.MASTER:
                master_key = key
            else:
                raise CosemError(ActionResult.OTHER_REASON, f"key id {identifier} not supported")
        self.security.pending_keys = SecurityKeys(block_key, authentication_key)
        self.security.master_key = master_key

    def _key_agreement(self, parameters: Data, client_title: bytes | None) -> Data:
        security = self.security
        if (
            security.security_suite != SecuritySuite.ECDH_ECDSA_AES_GCM_128_SHA_256
            or security.signing_key is None
        ):
            raise CosemError(ActionResult.OTHER_REASON, "key agreement needs security suite 1")
        verify_key = None if client_title is None else security.client_verify_keys.get(client_title)
        if client_title is None or verify_key is None:
            raise CosemError(ActionResult.READ_WRITE_DENIED, "no signing key for this client")
        agreed: dict[int, bytes] = {}
        answers = []
        for item in parameters.as_items("key_agreement_data"):
            key_id, key_data = item.as_items("key_agreement_data_item", 2)
            identifier = key_id.as_int("key_id")
            if identifier not in (
                GlobalKeyId.UNICAST_ENCRYPTION,
                GlobalKeyId.AUTHENTICATION,
                GlobalKeyId.MASTER,
            ):
                raise CosemError(ActionResult.OTHER_REASON, f"key id {identifier} not supported")
            peer = open_ephemeral_key_data(identifier, key_data.as_bytes("key_data"), verify_key)
            ephemeral = ec.generate_private_key(ec.SECP256R1())
            agreed[identifier] = agreed_key(
                ephemeral, peer, identifier, client_title, security.server_system_title
            )
            answers.append(
                Data.structure(
                    Data.enum(identifier),
                    Data.octet_string(
                        ephemeral_key_data(identifier, ephemeral, security.signing_key)
                    ),
                )
            )
        if not agreed:
            raise type_unmatched("key_agreement takes at least one key")
        keys = security.keys
        security.pending_keys = SecurityKeys(
            agreed.get(GlobalKeyId.UNICAST_ENCRYPTION, keys.block_cipher_key),
            agreed.get(GlobalKeyId.AUTHENTICATION, keys.authentication_key),
        )
        security.master_key = agreed.get(GlobalKeyId.MASTER, security.master_key)
        return Data.array(answers)
