"""The meter's token gateway: STS tokens in, accept or reject with the standard's reason.

The gateway follows the semantics of the DLMS/COSEM token gateway (interface class 115)
and of an IEC 62055-41 decoder [1, 2]. A token entered on the keypad (or pushed by the
head-end) goes through, in order:

1. **format**: 20 decimal digits of a number below 2**66 (else ``format``);
2. **class 1** tokens (test/display) are not encrypted: they are checked for their CRC and
   manufacturer code (0, or the meter's own) and are accepted even during a keypad lockout;
3. **keypad lockout**: after 3 consecutive bad entries (``format`` or ``invalid``) the
   keypad is locked for 10 s; every further bad entry locks it again for twice as long, up
   to 1280 s. An accepted token (other than a test token) ends the run;
4. **decryption** with the meter's decoder key and **CRC** check (else ``invalid``: a token
   for another meter, or mistyped);
5. **function**: a class or subclass the standard reserves;
6. **key type**: under an initialisation key (KT 0) or the default key (KT 1, ``ddtk``) the
   meter takes key change tokens only; a key change to KT 0 is refused (``key_type``);
7. **TID** (class 0 and class 2 with a TID): ``key_expired`` when ``TID >> 16`` exceeds the
   key expiry number, ``used`` when the TID is in memory, ``old`` when the memory is full
   and the TID is older than the oldest one held.

The meter then decides what the token does (credit, clear credit, clear tamper, maximum
power) and may still refuse it (``function``, ``overflow``, ``range``); only an accepted
token's TID enters the memory, which holds the ``tid_memory`` (at least 50) newest TIDs.

Key change tokens carry no TID. Their halves (two for a 64-bit key, four for a 128-bit
key) are kept, sealed, until all have arrived; only then does the new key take effect,
with its KRN, KT, KEN, TI (and SGC for a 128-bit key). With the rollover bit set the meter
clears its TID memory and moves to the next base date (1993 -> 2014 -> 2035).

References
----------
.. [1] IEC 62055-41:2018, the decoder's application-layer processing of tokens: token
       acceptance, TID record, key change and the rejection reasons.
.. [2] DLMS UA 1000-1 (Blue Book), "Token gateway" (class_id 115): token status codes
       (format, authentication, validation, ...) and the token delivery method.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from meterstack.core.errors import ConfigError, CorruptStateError
from meterstack.core.time import from_epoch, zone
from meterstack.meter.config import StsConfig
from meterstack.sts.codec import decode_token
from meterstack.sts.datablock import TokenClass, parse_token_digits, remove_class
from meterstack.sts.ea import DecoderKeyGenerationAlgorithm, EncryptionAlgorithm
from meterstack.sts.errors import TokenFormatError
from meterstack.sts.keys import (
    KeyParameters,
    SealedKeyError,
    seal_decoder_key,
    seal_secret,
    unseal_decoder_key,
    unseal_secret,
)
from meterstack.sts.tid import BaseDate, key_expired, local_time_of_tid
from meterstack.sts.tokens import (
    CreditToken,
    KeyChangeToken,
    KeyChangeToken1,
    KeyChangeToken2,
    KeyChangeToken3,
    KeyChangeToken4,
    ManagementKind,
    ManagementToken,
    MeterTestToken,
    Token,
    decode_fields,
)

__all__ = [
    "LOCKOUT_AFTER_BAD_ENTRIES",
    "LOCKOUT_FIRST_S",
    "LOCKOUT_MAX_S",
    "Received",
    "TokenGateway",
    "TokenRejection",
    "TokenResult",
]

LOCKOUT_AFTER_BAD_ENTRIES = 3
LOCKOUT_FIRST_S = 10.0
LOCKOUT_MAX_S = 1280.0


class TokenRejection(StrEnum):
    """Why a token was refused (IEC 62055-41 reasons; ``keypad_locked`` is meterstack's)."""

    FORMAT = "format"
    INVALID = "invalid"
    USED = "used"
    OLD = "old"
    KEY_EXPIRED = "key_expired"
    DDTK = "ddtk"
    OVERFLOW = "overflow"
    RANGE = "range"
    FUNCTION = "function"
    MANUFACTURER_CODE = "manufacturer_code"
    KEY_TYPE = "key_type"
    KEYPAD_LOCKED = "keypad_locked"


_BAD_ENTRIES = frozenset({TokenRejection.FORMAT, TokenRejection.INVALID})


@dataclass(frozen=True, slots=True)
class TokenResult:
    """What became of one token.

    Attributes
    ----------
    accepted : bool
    reason : TokenRejection or None
        Why it was refused (``None`` when accepted).
    token_class, subclass : int or None
        As decoded (``None`` when the token could not be read).
    effect : str
        What the token did, or the refusal in words.
    tid : int or None
        The token identifier, for tokens that carry one.
    issued_at : datetime or None
        The time of issue the TID stands for (UTC, from the utility's local time).
    amount : Decimal or None
        Credit added or cleared (credit units), or the new power limit [W].
    lockout_s : float or None
        Set when this entry locked the keypad: for how long. [s]
    """

    accepted: bool
    reason: TokenRejection | None
    token_class: int | None
    subclass: int | None
    effect: str
    tid: int | None = None
    issued_at: datetime | None = None
    amount: Decimal | None = None
    lockout_s: float | None = None


@dataclass(frozen=True, slots=True)
class Received:
    """A token that passed the gateway's checks and awaits the meter's decision."""

    token: Token
    token_class: int
    subclass: int
    tid: int | None
    issued_at: datetime | None


def _tid_of(token: Token) -> int | None:
    return token.tid if isinstance(token, CreditToken | ManagementToken) else None


class TokenGateway:
    """The decoder state of one meter: key, TID memory, keypad lockout, pending key change.

    Parameters
    ----------
    config : StsConfig
        The meter's STS section (initial key, parameters, time zone, memory size).
    holder : str
        The meter's serial: sealed keys are bound to it.
    key_encryption_key : bytes
        The 32-byte KEK that opens the sealed decoder key.
    default_timezone : str
        The meter's time zone, used for TIDs when the STS section names none.
    """

    def __init__(
        self,
        config: StsConfig,
        holder: str,
        key_encryption_key: bytes,
        default_timezone: str = "UTC",
    ) -> None:
        self.config = config
        self._holder = holder
        self._kek = key_encryption_key
        self._tz = zone(config.timezone or default_timezone)
        self.parameters: KeyParameters = config.key_parameters()
        self._sealed_key = config.decoder_key
        try:
            self._key = unseal_decoder_key(
                self._sealed_key, self.parameters, key_encryption_key, holder
            )
        except SealedKeyError as exc:
            raise ConfigError(
                f"meter {holder}: sts.decoder_key does not open with the key-encryption key "
                f"given for these key parameters ({exc.reason})"
            ) from exc
        self.tids: list[int] = []
        self.bad_entries = 0
        self.lockouts = 0
        self.locked_until: float | None = None
        self._pending: dict[int, KeyChangeToken] = {}

    def __repr__(self) -> str:
        p = self.parameters
        return (
            f"TokenGateway(holder={self._holder!r}, sgc={p.supply_group_code}, "
            f"ti={p.tariff_index}, krn={p.key_revision_number}, kt={p.key_type}, "
            f"key=<hidden>, tids={len(self.tids)})"
        )

    # ------------------------------------------------------------------ checks

    def locked(self, at: float) -> bool:
        """Whether the keypad is locked at ``at`` (POSIX seconds)."""
        return self.locked_until is not None and at < self.locked_until

    @property
    def pending_sections(self) -> tuple[int, ...]:
        """The subclasses of key change tokens received and waiting for the others."""
        return tuple(sorted(self._pending))

    def receive(self, text: str, at: float) -> Received | TokenResult:
        """Read and check ``text`` entered at ``at``; a :class:`TokenResult` is a refusal."""
        try:
            token_class, _ = remove_class(parse_token_digits(text))
        except TokenFormatError as exc:
            if self.locked(at):
                return self._locked(None, None)
            return self._bad(at, TokenRejection.FORMAT, None, None, exc.reason)
        if token_class == TokenClass.NON_METER_SPECIFIC:
            return self._receive_test_token(text, at)
        if self.locked(at):
            return self._locked(token_class, None)
        decoded = decode_token(text, self._key, self.parameters.ea)
        if not decoded.crc_ok:
            return self._bad(
                at,
                TokenRejection.INVALID,
                token_class,
                None,
                "CRC fails under this meter's key: mistyped, or for another meter",
            )
        token = decoded.token
        if token is None:
            return _refusal(
                TokenRejection.FUNCTION,
                token_class,
                decoded.subclass,
                "class/subclass reserved by IEC 62055-41",
            )
        is_key_change = isinstance(
            token, KeyChangeToken1 | KeyChangeToken2 | KeyChangeToken3 | KeyChangeToken4
        )
        key_type = self.parameters.key_type
        if not is_key_change and key_type in (0, 1):
            reason = TokenRejection.DDTK if key_type == 1 else TokenRejection.KEY_TYPE
            return _refusal(
                reason, token_class, decoded.subclass, "this key takes key change tokens only"
            )
        if is_key_change:
            problem = self._check_key_change(token)
            if problem is not None:
                return _refusal(problem[0], token_class, decoded.subclass, problem[1])
        tid = _tid_of(token)
        issued_at = None
        if tid is not None:
            issued_at = self._issued_at(tid)
            refusal = self._check_tid(tid, token_class, decoded.subclass, issued_at)
            if refusal is not None:
                return refusal
        return Received(token, token_class, decoded.subclass, tid, issued_at)

    def _check_key_change(self, token: Token) -> tuple[TokenRejection, str] | None:
        """A reason to refuse a key change section, or ``None``."""
        if isinstance(token, KeyChangeToken1):
            if token.key_type == 0:
                return TokenRejection.KEY_TYPE, "a meter is never given an initialisation key"
            if not 1 <= token.key_revision_number <= 9:
                return TokenRejection.RANGE, f"key revision number {token.key_revision_number}"
        elif isinstance(token, KeyChangeToken2):
            if token.tariff_index > 99:
                return TokenRejection.RANGE, f"tariff index {token.tariff_index}"
        elif self.parameters.ea.key_bits == 64:
            return TokenRejection.FUNCTION, "3rd and 4th key sections are for 128-bit keys"
        else:
            third = token if isinstance(token, KeyChangeToken3) else self._pending.get(8)
            fourth = token if isinstance(token, KeyChangeToken4) else self._pending.get(9)
            high = fourth.sgc_high if isinstance(fourth, KeyChangeToken4) else 0
            low = third.sgc_low if isinstance(third, KeyChangeToken3) else 0
            if high << 12 | low > 999_999:
                return TokenRejection.RANGE, f"supply group code {high << 12 | low}"
        return None

    def _receive_test_token(self, text: str, at: float) -> Received | TokenResult:
        decoded = decode_token(text, None, EncryptionAlgorithm.EA07)
        if not decoded.crc_ok:
            return self._bad(
                at,
                TokenRejection.INVALID,
                decoded.token_class,
                decoded.subclass,
                "CRC of the test token fails",
            )
        token = decoded.token
        if not isinstance(token, MeterTestToken):
            return _refusal(
                TokenRejection.FUNCTION,
                decoded.token_class,
                decoded.subclass,
                "class 1 subclass not supported",
            )
        if token.manufacturer_code not in (0, self.config.manufacturer_code):
            return _refusal(
                TokenRejection.MANUFACTURER_CODE,
                decoded.token_class,
                decoded.subclass,
                f"for manufacturer {token.manufacturer_code}, not {self.config.manufacturer_code}",
            )
        return Received(token, decoded.token_class, decoded.subclass, None, None)

    def _check_tid(
        self, tid: int, token_class: int, subclass: int, issued_at: datetime
    ) -> TokenResult | None:
        def refuse(reason: TokenRejection, effect: str) -> TokenResult:
            return _refusal(reason, token_class, subclass, effect, tid=tid, issued_at=issued_at)

        if key_expired(tid, self.parameters.key_expiry_number):
            return refuse(
                TokenRejection.KEY_EXPIRED,
                f"TID {tid} is past key expiry number {self.parameters.key_expiry_number}",
            )
        index = bisect.bisect_left(self.tids, tid)
        if index < len(self.tids) and self.tids[index] == tid:
            return refuse(TokenRejection.USED, f"TID {tid} was used before")
        if len(self.tids) >= self.config.tid_memory and tid < self.tids[0]:
            return refuse(TokenRejection.OLD, f"TID {tid} is older than the oldest remembered")
        return None

    def _issued_at(self, tid: int) -> datetime:
        local = local_time_of_tid(tid, self.parameters.base_date)
        return local.replace(tzinfo=self._tz).astimezone(UTC)

    def _bad(
        self,
        at: float,
        reason: TokenRejection,
        token_class: int | None,
        subclass: int | None,
        effect: str,
    ) -> TokenResult:
        self.bad_entries += 1
        lockout_s = None
        if self.bad_entries >= LOCKOUT_AFTER_BAD_ENTRIES:
            lockout_s = min(LOCKOUT_FIRST_S * 2**self.lockouts, LOCKOUT_MAX_S)
            self.locked_until = at + lockout_s
            self.lockouts += 1
        return TokenResult(False, reason, token_class, subclass, effect, lockout_s=lockout_s)

    def _locked(self, token_class: int | None, subclass: int | None) -> TokenResult:
        assert self.locked_until is not None
        until = from_epoch(self.locked_until).isoformat()
        return _refusal(
            TokenRejection.KEYPAD_LOCKED, token_class, subclass, f"keypad locked until {until}"
        )

    # ------------------------------------------------------------------ outcomes

    def commit(self, received: Received) -> str:
        """Record an accepted token: its TID enters the memory, the bad-entry run ends
        (except for a class 1 test token).

        For a key change token, keep it until its companions arrive, then install the new
        key; the return value says which happened.
        """
        if received.token_class != TokenClass.NON_METER_SPECIFIC:
            # A test token is taken even while locked, so it does not end a run of bad
            # entries (else it would be a way round the lockout).
            self.bad_entries = 0
            self.lockouts = 0
            self.locked_until = None
        if received.tid is not None:
            bisect.insort(self.tids, received.tid)
            excess = len(self.tids) - self.config.tid_memory
            if excess > 0:
                del self.tids[:excess]
        token = received.token
        if isinstance(token, KeyChangeToken1 | KeyChangeToken2 | KeyChangeToken3 | KeyChangeToken4):
            return self._key_change(token)
        return ""

    def _key_change(self, token: KeyChangeToken) -> str:
        self._pending[int(token.subclass)] = token
        needed = (
            (ManagementKind.SET_DECODER_KEY_1, ManagementKind.SET_DECODER_KEY_2)
            if self.parameters.ea.key_bits == 64
            else tuple(kind for kind in ManagementKind if kind.is_key_change)
        )
        missing = [int(kind) for kind in needed if int(kind) not in self._pending]
        if missing:
            have = len(needed) - len(missing)
            return f"key change section {have} of {len(needed)} kept; waiting for {missing}"
        first = self._pending[ManagementKind.SET_DECODER_KEY_1]
        second = self._pending[ManagementKind.SET_DECODER_KEY_2]
        assert isinstance(first, KeyChangeToken1)
        assert isinstance(second, KeyChangeToken2)
        current = self.parameters
        supply_group_code = current.supply_group_code
        if current.ea.key_bits == 64:
            new_key = first.new_key_high << 32 | second.new_key_low
        else:
            third = self._pending[ManagementKind.SET_DECODER_KEY_3]
            fourth = self._pending[ManagementKind.SET_DECODER_KEY_4]
            assert isinstance(third, KeyChangeToken3)
            assert isinstance(fourth, KeyChangeToken4)
            new_key = (
                first.new_key_high << 96
                | third.new_key_part << 64
                | fourth.new_key_part << 32
                | second.new_key_low
            )
            supply_group_code = f"{fourth.sgc_high << 12 | third.sgc_low:06d}"
        base_date = current.base_date.next() if first.rollover else current.base_date
        self.parameters = KeyParameters(
            supply_group_code=supply_group_code,
            tariff_index=f"{second.tariff_index:02d}",
            key_revision_number=first.key_revision_number,
            key_type=first.key_type,
            key_expiry_number=first.ken_high << 4 | second.ken_low,
            base_date=base_date,
            ea=current.ea,
            dkga=current.dkga,
        )
        self._key = new_key.to_bytes(current.key_bytes, "big")
        self._sealed_key = seal_decoder_key(self._key, self.parameters, self._kek, self._holder)
        self._pending.clear()
        if first.rollover:
            self.tids.clear()
        p = self.parameters
        return (
            f"decoder key changed: SGC {p.supply_group_code} TI {p.tariff_index} "
            f"KRN {p.key_revision_number} KT {p.key_type} KEN {p.key_expiry_number}"
            + (f"; TID rollover to base date {int(base_date)}" if first.rollover else "")
        )

    # ------------------------------------------------------------------ persistence

    def _pending_context(self) -> str:
        return f"{self._holder}|pending-key-change"

    def to_state(self) -> dict[str, Any]:
        """The gateway's non-volatile state; no key material in clear."""
        p = self.parameters
        pending = None
        if self._pending:
            rows = [[subclass, token.data] for subclass, token in sorted(self._pending.items())]
            pending = seal_secret(
                json.dumps(rows).encode("ascii"), self._kek, self._pending_context()
            )
        return {
            "parameters": {
                "sgc": p.supply_group_code,
                "ti": p.tariff_index,
                "krn": p.key_revision_number,
                "kt": p.key_type,
                "ken": p.key_expiry_number,
                "base_date": int(p.base_date),
                "ea": p.ea.value,
                "dkga": p.dkga.value,
            },
            "decoder_key": self._sealed_key,
            "tids": list(self.tids),
            "bad_entries": self.bad_entries,
            "lockouts": self.lockouts,
            "locked_until": self.locked_until,
            "pending": pending,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`to_state`'s output.

        Raises
        ------
        CorruptStateError
            The sealed key or pending sections do not open with this KEK.
        """
        raw = state["parameters"]
        parameters = KeyParameters(
            supply_group_code=str(raw["sgc"]),
            tariff_index=str(raw["ti"]),
            key_revision_number=int(raw["krn"]),
            key_type=int(raw["kt"]),
            key_expiry_number=int(raw["ken"]),
            base_date=BaseDate(int(raw["base_date"])),
            ea=EncryptionAlgorithm(raw["ea"]),
            dkga=DecoderKeyGenerationAlgorithm(raw["dkga"]),
        )
        try:
            key = unseal_decoder_key(state["decoder_key"], parameters, self._kek, self._holder)
            pending: dict[int, KeyChangeToken] = {}
            if state["pending"] is not None:
                opened = unseal_secret(state["pending"], self._kek, self._pending_context())
                for subclass, data in json.loads(opened):
                    token = decode_fields(TokenClass.METER_SPECIFIC, int(subclass), int(data))
                    assert isinstance(
                        token, KeyChangeToken1 | KeyChangeToken2 | KeyChangeToken3 | KeyChangeToken4
                    )
                    pending[int(subclass)] = token
        except SealedKeyError as exc:
            raise CorruptStateError(
                f"meter {self._holder}: the stored decoder key does not open ({exc.reason})"
            ) from exc
        tids = sorted(int(tid) for tid in state["tids"])
        self.parameters = parameters
        self._key = key
        self._sealed_key = state["decoder_key"]
        self.tids = tids[-self.config.tid_memory :] if tids else []
        self.bad_entries = int(state["bad_entries"])
        self.lockouts = int(state["lockouts"])
        locked_until = state["locked_until"]
        self.locked_until = None if locked_until is None else float(locked_until)
        self._pending = pending


def _refusal(
    reason: TokenRejection,
    token_class: int | None,
    subclass: int | None,
    effect: str,
    *,
    tid: int | None = None,
    issued_at: datetime | None = None,
) -> TokenResult:
    return TokenResult(False, reason, token_class, subclass, effect, tid, issued_at)
