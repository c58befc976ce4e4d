"""The STS compliance vectors of ``shared/data/sts/vectors.json`` and what they imply."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from meterstack.sts import (
    BaseDate,
    DecoderKeyGenerationAlgorithm,
    EncryptionAlgorithm,
    KeyParameters,
    MeterPan,
    MeterRecord,
    VendingKey,
)

from ..conftest import shared_data


def load_vectors() -> dict[str, Any]:
    with shared_data("sts", "vectors.json").open(encoding="utf-8") as handle:
        document: dict[str, Any] = json.load(handle)
    return document


@dataclass(frozen=True)
class Vector:
    """One vector with the ``common`` parameters filled in (``None`` in a vector = unused)."""

    id: str
    raw: dict[str, Any]
    params: dict[str, Any]

    @property
    def meter(self) -> MeterRecord:
        p = self.params
        pan = MeterPan.parse(p["pan"]) if p.get("iin") is None else MeterPan(p["iin"], p["drn"])
        keys = KeyParameters(
            supply_group_code=p["sgc"],
            tariff_index=p["ti"],
            key_revision_number=p["krn"],
            key_type=p["key_type"],
            key_expiry_number=p["ken"],
            base_date=BaseDate.parse(p["base_date"]),
            ea=EncryptionAlgorithm.parse(p["ea"]),
            dkga=DecoderKeyGenerationAlgorithm.parse(p["dkga"]),
        )
        return MeterRecord(pan, keys)

    @property
    def vending_key(self) -> VendingKey:
        return VendingKey.from_hex(self.params["vending_key"])

    @property
    def time(self) -> datetime:
        return datetime.fromisoformat(self.raw["time_local"])

    @property
    def minutes_since_base(self) -> int:
        """The TID computed from scratch: whole minutes from the base date's midnight."""
        base = datetime.fromisoformat(self.params["base_date"])
        return int((self.time - base).total_seconds()) // 60

    @property
    def amount(self) -> Decimal:
        return Decimal(str(self.raw["amount"]))


def vectors() -> list[Vector]:
    document = load_vectors()
    common = document["common"]
    out = []
    for raw in document["vectors"]:
        params = dict(common)
        for key, value in raw.items():
            if key in common:
                params[key] = value
        out.append(Vector(raw["id"], raw, params))
    return out


def representable_at_least(quantity: int) -> int:
    """The smallest value of the 16-bit amount coding that is >= ``quantity``.

    Computed by brute force from the coding's definition (IEC 62055-41, 6.3.5):
    value = m * 10**e + sum(2**14 * 10**(n-1), n = 1..e), e in 0..3, m in 0..16383.
    """
    best = None
    for exponent in range(4):
        offset = sum(16384 * 10 ** (n - 1) for n in range(1, exponent + 1))
        step = 10**exponent
        if quantity <= offset:
            candidate = offset
        else:
            mantissa = -(-(quantity - offset) // step)
            if mantissa > 16383:
                continue
            candidate = offset + mantissa * step
        best = candidate if best is None else min(best, candidate)
    assert best is not None
    return best
