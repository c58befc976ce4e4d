"""DLMS/COSEM security: suite 0 (AES-GCM-128) and suite 1 (plus ECDH and ECDSA on P-256).

Suite 1 ciphers APDUs exactly as suite 0 (AES-GCM-128 under the global unicast key, the
suite id 1 in the security control octet) and adds, on P-256 with SHA-256 [1]_ 9.2.3:

* HLS mechanism 7: ``f(StoC) = ECDSA(SystemTitle-C || SystemTitle-S || StoC || CtoS)``
  signed by the client, ``f(CtoS) = ECDSA(SystemTitle-S || SystemTitle-C || CtoS ||
  StoC)`` by the server, each ``r || s`` (64 octets) [1]_ 9.2.7.4;
* key agreement with the Ephemeral Unified Model C(2e, 0s, ECC CDH) scheme [3]_ 6.1.2.2:
  each party sends an ephemeral public key ``Q`` (``x || y``) and its ECDSA signature over
  ``key_id || Q`` made with its static signing key; both compute ``Z = x(d_e Q_peer)``
  and derive the key with the concatenation KDF, party U being the client and party V the
  server [1]_ 9.2.3.4.6.

Protected APDUs (Green Book 9.2.7.2.4): a ciphered tag (``glo-`` with the global unicast
key), its A-XDR length, then the security header and the protected content::

    security control (1) | invocation counter (4) | ciphertext or plaintext | tag (12)

The security control octet carries the suite id in bits 0-3, ``0x10`` authentication,
``0x20`` encryption, ``0x40`` broadcast key, ``0x80`` compression. The GCM initialisation
vector is the sender's system title (8 octets) followed by the invocation counter (4)
(Green Book 9.2.4.8.3). With authentication and encryption the additional data is
``SC || AK``; with authentication only it is ``SC || AK || plaintext`` and the plaintext
travels in clear; with encryption only there is no tag. Tags are 12 octets.

A receiver accepts an invocation counter only if it is greater than the last one it
accepted from that sender (replay protection, Green Book 9.2.4.8.3 and the
``invocation_counter`` of the security setup object, Blue Book 4.4.7).

References
----------
.. [1] IEC 62056-5-3:2017 (DLMS UA Green Book ed. 8), 9.2.3 "Cryptographic algorithms",
   9.2.4.8 "Authenticated encryption", 9.2.7.2.4 "Ciphered APDUs".
.. [2] NIST SP 800-38D, Galois/Counter Mode (GCM) and GMAC.
.. [3] NIST SP 800-56A Rev. 3, 5.8.2.1 the one-step (concatenation) KDF, 6.1.2.2 the
   Ephemeral Unified Model; FIPS 186-4 ECDSA.
.. [4] IEC 62056-6-2:2017 (DLMS UA Blue Book ed. 12), 4.4.7 Security setup, version 1.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from enum import IntEnum, IntFlag

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from meterstack.protocols.dlms.axdr import decode_length, encode_length
from meterstack.protocols.errors import ProtocolError, SecurityError

TAG_SIZE = 12
SYSTEM_TITLE_SIZE = 8
KEY_SIZE = 16


class SecurityControl(IntFlag):
    """Bits of the security control octet [1]_ 9.2.7.2.4.1 (the suite id is bits 0-3)."""

    AUTHENTICATION = 0x10
    ENCRYPTION = 0x20
    BROADCAST_KEY = 0x40
    COMPRESSION = 0x80


class SecuritySuite(IntEnum):
    """Security suites of [1]_ 9.2.3.7."""

    AES_GCM_128 = 0
    ECDH_ECDSA_AES_GCM_128_SHA_256 = 1


#: Plain xDLMS tag -> global ciphering tag [1]_ 9.5 (the xDLMS-APDU CHOICE).
GLOBAL_TAGS: dict[int, int] = {
    0x01: 0x21,  # initiate-request -> glo-initiate-request
    0x08: 0x28,  # initiate-response -> glo-initiate-response
    0x0E: 0x2E,  # confirmed-service-error -> glo-confirmed-service-error
    0xC0: 0xC8,  # get-request
    0xC1: 0xC9,  # set-request
    0xC2: 0xCA,  # event-notification-request
    0xC3: 0xCB,  # action-request
    0xC4: 0xCC,  # get-response
    0xC5: 0xCD,  # set-response
    0xC7: 0xCF,  # action-response
}
#: Plain xDLMS tag -> dedicated ciphering tag.
DEDICATED_TAGS: dict[int, int] = {
    0xC0: 0xD0,
    0xC1: 0xD1,
    0xC2: 0xD2,
    0xC3: 0xD3,
    0xC4: 0xD4,
    0xC5: 0xD5,
    0xC7: 0xD7,
}
PLAIN_TAG_OF: dict[int, int] = {
    **{v: k for k, v in GLOBAL_TAGS.items()},
    **{v: k for k, v in DEDICATED_TAGS.items()},
}


@dataclass(frozen=True, slots=True)
class SecurityKeys:
    """The symmetric keys of one association: global unicast encryption and authentication."""

    block_cipher_key: bytes
    authentication_key: bytes

    def __post_init__(self) -> None:
        for field in ("block_cipher_key", "authentication_key"):
            value = getattr(self, field)
            if not isinstance(value, bytes) or len(value) != KEY_SIZE:
                raise ProtocolError(field, "<key>", f"an AES-128 key of {KEY_SIZE} octets")


def _iv(system_title: bytes, invocation_counter: int) -> bytes:
    if len(system_title) != SYSTEM_TITLE_SIZE:
        raise ProtocolError("system_title", system_title.hex(), "a system title is 8 octets")
    if not 0 <= invocation_counter <= 0xFFFFFFFF:
        raise ProtocolError("invocation_counter", invocation_counter, "a 32-bit counter")
    return system_title + invocation_counter.to_bytes(4, "big")


def _gcm_encrypt(key: bytes, iv: bytes, aad: bytes, plaintext: bytes) -> tuple[bytes, bytes]:
    encryptor = Cipher(algorithms.AES(key), modes.GCM(iv)).encryptor()
    encryptor.authenticate_additional_data(aad)
    ciphertext = encryptor.update(plaintext) + encryptor.finalize()
    return ciphertext, encryptor.tag[:TAG_SIZE]


def _gcm_decrypt(key: bytes, iv: bytes, aad: bytes, ciphertext: bytes, tag: bytes) -> bytes:
    decryptor = Cipher(algorithms.AES(key), modes.GCM(iv, tag, min_tag_length=TAG_SIZE)).decryptor()
    decryptor.authenticate_additional_data(aad)
    try:
        return decryptor.update(ciphertext) + decryptor.finalize()
    except InvalidTag:
        raise SecurityError("the authentication tag does not match: wrong key or altered") from None


def _ctr(key: bytes, iv: bytes, octets: bytes) -> bytes:
    # GCM without a tag is AES-CTR starting at inc32(J0) = IV || 0x00000002 [2]_ 7.1.
    cipher = Cipher(algorithms.AES(key), modes.CTR(iv + b"\x00\x00\x00\x02")).encryptor()
    return cipher.update(octets) + cipher.finalize()


def protect(
    security_control: int,
    system_title: bytes,
    invocation_counter: int,
    keys: SecurityKeys,
    plaintext: bytes,
) -> bytes:
    """``SC || IC || content || tag`` for ``plaintext`` sent by ``system_title`` [1]_."""
    sc = security_control
    iv = _iv(system_title, invocation_counter)
    header = bytes((sc,)) + invocation_counter.to_bytes(4, "big")
    authenticated = bool(sc & SecurityControl.AUTHENTICATION)
    encrypted = bool(sc & SecurityControl.ENCRYPTION)
    key = keys.block_cipher_key
    if authenticated and encrypted:
        ciphertext, tag = _gcm_encrypt(key, iv, bytes((sc,)) + keys.authentication_key, plaintext)
        return header + ciphertext + tag
    if authenticated:
        _, tag = _gcm_encrypt(key, iv, bytes((sc,)) + keys.authentication_key + plaintext, b"")
        return header + plaintext + tag
    if encrypted:
        return header + _ctr(key, iv, plaintext)
    raise ProtocolError("security_control", sc, "authentication, encryption or both")


def unprotect(protected: bytes, system_title: bytes, keys: SecurityKeys) -> tuple[int, int, bytes]:
    """Check and open ``SC || IC || content || tag``; return (SC, IC, plaintext).

    Raises
    ------
    ProtocolError
        Too short, or a security control octet with neither bit set or compression.
    SecurityError
        The tag does not match (wrong key, wrong system title, altered octets).
    """
    if len(protected) < 5:
        raise ProtocolError("security_header", protected.hex(), "truncated security header")
    sc = protected[0]
    if sc & SecurityControl.COMPRESSION:
        raise ProtocolError("security_control", sc, "compression is not supported")
    if sc & 0x0F not in (SecuritySuite.AES_GCM_128, SecuritySuite.ECDH_ECDSA_AES_GCM_128_SHA_256):
        raise ProtocolError("security_control", sc, "security suite 0 or 1")
    ic = int.from_bytes(protected[1:5], "big")
    body = protected[5:]
    iv = _iv(system_title, ic)
    authenticated = bool(sc & SecurityControl.AUTHENTICATION)
    encrypted = bool(sc & SecurityControl.ENCRYPTION)
    key = keys.block_cipher_key
    if authenticated:
        if len(body) < TAG_SIZE:
            raise ProtocolError("security_tag", len(body), "truncated authentication tag")
        content, tag = body[:-TAG_SIZE], body[-TAG_SIZE:]
        if encrypted:
            aad = bytes((sc,)) + keys.authentication_key
            return sc, ic, _gcm_decrypt(key, iv, aad, content, tag)
        _gcm_decrypt(key, iv, bytes((sc,)) + keys.authentication_key + content, b"", tag)
        return sc, ic, content
    if encrypted:
        return sc, ic, _ctr(key, iv, body)
    raise ProtocolError("security_control", sc, "authentication, encryption or both")


def wrap_ciphered(tag: int, protected: bytes) -> bytes:
    """A ciphered APDU: its tag, the A-XDR length, then ``SC || IC || ... || T``."""
    return bytes((tag,)) + encode_length(len(protected)) + protected


def unwrap_ciphered(apdu: bytes) -> tuple[int, bytes]:
    """Split a ciphered APDU into its tag and the protected octets."""
    if not apdu:
        raise ProtocolError("apdu", b"", "empty APDU")
    length, offset = decode_length(apdu, 1, "ciphered_apdu.length")
    if offset + length != len(apdu):
        raise ProtocolError(
            "ciphered_apdu.length", length, f"{len(apdu) - offset} octets follow the length"
        )
    return apdu[0], apdu[offset:]


def gmac_authentication(
    system_title: bytes, invocation_counter: int, keys: SecurityKeys, challenge: bytes
) -> bytes:
    """HLS mechanism 5 (GMAC): ``f(challenge) = SC || IC || GMAC(SC || AK || challenge)``.

    SC is ``0x10`` (authentication only, suite 0) [1]_ 9.2.7.4 "HLS authentication
    mechanisms", Table 19.
    """
    sc = int(SecurityControl.AUTHENTICATION)
    _, tag = _gcm_encrypt(
        keys.block_cipher_key,
        _iv(system_title, invocation_counter),
        bytes((sc,)) + keys.authentication_key + challenge,
        b"",
    )
    return bytes((sc,)) + invocation_counter.to_bytes(4, "big") + tag


def check_gmac_authentication(
    reply: bytes, system_title: bytes, keys: SecurityKeys, challenge: bytes
) -> int:
    """Verify a peer's ``f(challenge)``; return its invocation counter.

    Raises
    ------
    SecurityError
        The reply is not ``0x10 || IC || tag`` or its tag does not match.
    """
    if len(reply) != 5 + TAG_SIZE or reply[0] != SecurityControl.AUTHENTICATION:
        raise SecurityError("the HLS-GMAC reply is not SC 0x10, IC and a 12-octet tag")
    ic = int.from_bytes(reply[1:5], "big")
    expected = gmac_authentication(system_title, ic, keys, challenge)
    if not _constant_time_equal(expected, reply):
        raise SecurityError("the HLS-GMAC reply does not prove knowledge of the keys")
    return ic


def _constant_time_equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


class ReplayGuard:
    """The last invocation counter accepted from each peer system title."""

    def __init__(self) -> None:
        self._last: dict[bytes, int] = {}

    def check(self, system_title: bytes, invocation_counter: int) -> None:
        """Accept ``invocation_counter`` if it is greater than the last one accepted.

        Raises
        ------
        SecurityError
            The counter was seen before or is lower (a replayed or reordered frame).
        """
        last = self._last.get(system_title, -1)
        if invocation_counter <= last:
            raise SecurityError(
                f"invocation counter {invocation_counter} is not above {last}: replay refused"
            )
        self._last[system_title] = invocation_counter

    def last(self, system_title: bytes) -> int | None:
        return self._last.get(system_title)


# ---------------------------------------------------------------------- suite 1


def ecdsa_sign(private_key: ec.EllipticCurvePrivateKey, message: bytes) -> bytes:
    """ECDSA P-256 / SHA-256 signature as ``r || s`` (32 + 32 octets) [1]_ 9.2.3.4."""
    der = private_key.sign(message, ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def ecdsa_verify(public_key: ec.EllipticCurvePublicKey, message: bytes, signature: bytes) -> None:
    """Check an ``r || s`` signature; raise :class:`SecurityError` if it does not verify."""
    if len(signature) != 64:
        raise SecurityError("an ECDSA P-256 signature is 64 octets (r || s)")
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    try:
        public_key.verify(der, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise SecurityError("the ECDSA signature does not verify") from None


def ecdsa_hls_message(
    signer_title: bytes, peer_title: bytes, signer_challenge: bytes, peer_challenge: bytes
) -> bytes:
    """What HLS mechanism 7 signs: ``f(StoC) = ECDSA(SystemTitle-C || SystemTitle-S ||
    StoC || CtoS)`` for the client, and symmetrically for the server [1]_ 9.2.7.4."""
    return signer_title + peer_title + peer_challenge + signer_challenge


def ecdsa_authentication(
    signing_key: ec.EllipticCurvePrivateKey,
    signer_title: bytes,
    peer_title: bytes,
    signer_challenge: bytes,
    peer_challenge: bytes,
) -> bytes:
    """HLS mechanism 7: the signer's ``f(challenge of the peer)`` (``r || s``)."""
    for field, title in (("signer_title", signer_title), ("peer_title", peer_title)):
        if len(title) != SYSTEM_TITLE_SIZE:
            raise ProtocolError(field, title.hex(), "a system title is 8 octets")
    message = ecdsa_hls_message(signer_title, peer_title, signer_challenge, peer_challenge)
    return ecdsa_sign(signing_key, message)


def check_ecdsa_authentication(
    reply: bytes,
    verify_key: ec.EllipticCurvePublicKey,
    *,
    signer_title: bytes,
    peer_title: bytes,
    signer_challenge: bytes,
    peer_challenge: bytes,
) -> None:
    """Verify a peer's HLS mechanism 7 reply; raise :class:`SecurityError` if it fails."""
    message = ecdsa_hls_message(signer_title, peer_title, signer_challenge, peer_challenge)
    ecdsa_verify(verify_key, message, reply)


def ecdh_shared_secret(
    private_key: ec.EllipticCurvePrivateKey, peer_public_key: ec.EllipticCurvePublicKey
) -> bytes:
    """The ECDH P-256 shared secret Z (the x coordinate, 32 octets) [3]_."""
    return private_key.exchange(ec.ECDH(), peer_public_key)


def concat_kdf(
    shared_secret: bytes,
    algorithm_id: bytes,
    party_u_info: bytes,
    party_v_info: bytes,
    key_size: int = KEY_SIZE,
) -> bytes:
    """NIST SP 800-56A one-step KDF with SHA-256, as suite 1 derives keys [1]_ 9.2.3.4.6.

    ``K = H(counter || Z || OtherInfo)`` with ``OtherInfo = AlgorithmID || PartyUInfo ||
    PartyVInfo`` (the system titles), truncated to ``key_size`` octets.
    """
    counter = (1).to_bytes(4, "big")
    other = algorithm_id + party_u_info + party_v_info
    return hashlib.sha256(counter + shared_secret + other).digest()[:key_size]


#: AlgorithmID of the KDF for AES-GCM-128: the DLMS UA cryptographic-algorithm-id
#: ``aes-gcm-128`` {2 16 756 5 8 3 0} as BER content octets [1]_ 9.2.3.4.6.5.
AES_GCM_128_ALGORITHM_ID = bytes.fromhex("60857405080300")
#: ``aes-wrap-128`` {2 16 756 5 8 3 2}: the algorithm a master key (KEK) is used with.
AES_WRAP_128_ALGORITHM_ID = bytes.fromhex("60857405080302")


class GlobalKeyId(IntEnum):
    """``key_id`` of the security setup's key methods [4]_."""

    UNICAST_ENCRYPTION = 0
    BROADCAST_ENCRYPTION = 1
    AUTHENTICATION = 2
    MASTER = 3


def algorithm_id_for(key_id: int) -> bytes:
    """The KDF's AlgorithmID for a key agreed for ``key_id``: AES-GCM-128 for the
    encryption and authentication keys, AES key wrap for the master key."""
    if key_id == GlobalKeyId.MASTER:
        return AES_WRAP_128_ALGORITHM_ID
    if key_id in (GlobalKeyId.UNICAST_ENCRYPTION, GlobalKeyId.AUTHENTICATION):
        return AES_GCM_128_ALGORITHM_ID
    raise ProtocolError("key_id", key_id, "0 (unicast encryption), 2 (authentication), 3 (KEK)")


def ephemeral_key_data(
    key_id: int,
    ephemeral_key: ec.EllipticCurvePrivateKey,
    signing_key: ec.EllipticCurvePrivateKey,
) -> bytes:
    """``key_data`` of one key agreement item: ``Q_e || ECDSA(key_id || Q_e)`` (128 octets).

    ``Q_e`` is the ephemeral public key as ``x || y``; the signature, made with the
    sender's static signing key, binds it to the key being agreed [1]_ 9.2.3.4.6.
    """
    point = public_key_octets(ephemeral_key.public_key())
    return point + ecdsa_sign(signing_key, bytes((key_id,)) + point)


def open_ephemeral_key_data(
    key_id: int, key_data: bytes, verify_key: ec.EllipticCurvePublicKey
) -> ec.EllipticCurvePublicKey:
    """Check a peer's ``Q_e || signature`` and return ``Q_e``.

    Raises
    ------
    ProtocolError
        Not 128 octets, or ``Q_e`` is not a point on P-256.
    SecurityError
        The signature does not verify with the peer's signing key.
    """
    if len(key_data) != 128:
        raise ProtocolError(
            "key_data", len(key_data), "an ephemeral key and its signature are 128 octets"
        )
    point, signature = key_data[:64], key_data[64:]
    public = public_key_from_octets(point)
    ecdsa_verify(verify_key, bytes((key_id,)) + point, signature)
    return public


def agreed_key(
    ephemeral_key: ec.EllipticCurvePrivateKey,
    peer_ephemeral_key: ec.EllipticCurvePublicKey,
    key_id: int,
    client_title: bytes,
    server_title: bytes,
) -> bytes:
    """The 16-octet key of the Ephemeral Unified Model: ``KDF(Z, AlgorithmID,
    SystemTitle-C, SystemTitle-S)`` with ``Z`` the ECDH shared secret [1]_ 9.2.3.4.6."""
    for field, title in (("client_title", client_title), ("server_title", server_title)):
        if len(title) != SYSTEM_TITLE_SIZE:
            raise ProtocolError(field, title.hex(), "a system title is 8 octets")
    shared = ecdh_shared_secret(ephemeral_key, peer_ephemeral_key)
    return concat_kdf(shared, algorithm_id_for(key_id), client_title, server_title)


def public_key_octets(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """A P-256 public key as ``x || y`` (64 octets), the form COSEM carries."""
    numbers = public_key.public_numbers()
    return numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big")


def public_key_from_octets(octets: bytes) -> ec.EllipticCurvePublicKey:
    if len(octets) != 64:
        raise ProtocolError("public_key", octets.hex(), "a P-256 public key is x || y, 64 octets")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + octets)
    except ValueError as exc:
        raise ProtocolError("public_key", octets.hex(), "not a point on P-256") from exc
