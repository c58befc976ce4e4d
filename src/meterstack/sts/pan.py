"""The meter's primary account number: IIN, DRN and the Luhn check digit.

An STS meter is addressed by its 18-digit PAN [1]:

    PAN = IIN (6 digits) + DRN (11 digits) + check digit (1)

or, with the older 4-digit issuer identification number, IIN (4) + DRN (13) + check digit.
The check digit is the Luhn (ISO/IEC 7812-1, "mod 10") digit over the 17 digits before it.
The default IIN of STS meters is 600727.

References
----------
.. [1] IEC 62055-41:2018, the meter primary account number (MeterPAN).
.. [2] ISO/IEC 7812-1:2017, Annex B "Luhn formula for computing modulus-10 check digit".
"""

from __future__ import annotations

from dataclasses import dataclass

from meterstack.sts.errors import StsInputError

__all__ = ["MeterPan", "luhn_check_digit"]

#: The IIN of STS meters.
STS_IIN = "600727"


def luhn_check_digit(digits: str) -> str:
    """The Luhn check digit to append to ``digits`` [2].

    Counting from the rightmost digit, every second digit (starting with that rightmost
    one) is doubled and reduced by 9 when above 9; the check digit brings the sum to a
    multiple of 10.
    """
    if not digits or not digits.isdigit() or not digits.isascii():
        raise StsInputError("digits", digits, "Luhn needs a string of decimal digits")
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


@dataclass(frozen=True, slots=True)
class MeterPan:
    """An issuer identification number and decoder reference number."""

    iin: str
    drn: str

    def __post_init__(self) -> None:
        for field, value in (("iin", self.iin), ("drn", self.drn)):
            if not isinstance(value, str) or not value.isdigit() or not value.isascii():
                raise StsInputError(field, value, "must be decimal digits")
        if (len(self.iin), len(self.drn)) not in ((6, 11), (4, 13)):
            raise StsInputError(
                "drn",
                self.drn,
                f"with a {len(self.iin)}-digit IIN the DRN has "
                f"{17 - len(self.iin)} digits (IIN 6 + DRN 11, or IIN 4 + DRN 13)",
            )

    @property
    def check_digit(self) -> str:
        return luhn_check_digit(self.iin + self.drn)

    @property
    def pan(self) -> str:
        """The 18-digit PAN, check digit included."""
        return self.iin + self.drn + self.check_digit

    def pan_block(self, key_type: int) -> bytes:
        """The 64-bit PAN block of DKGA02: the 16 digits after the first, as BCD [1].

        That is the IIN's last 5 (or 3) digits and the DRN's 11 (or 13); for key type 3
        (a common key for a supply group) the DRN digits are zeros.
        """
        drn = "0" * len(self.drn) if key_type == 3 else self.drn
        return bytes.fromhex((self.iin + drn)[1:])

    @classmethod
    def parse(cls, pan: str, field: str = "pan") -> MeterPan:
        """Split an 18-digit PAN (IIN 6 + DRN 11 + Luhn digit) and check its digit."""
        text = pan.strip().replace(" ", "").replace("-", "") if isinstance(pan, str) else pan
        if not isinstance(text, str) or len(text) != 18 or not text.isdigit():
            raise StsInputError(field, pan, "a meter PAN has 18 digits")
        expected = luhn_check_digit(text[:17])
        if text[17] != expected:
            raise StsInputError(field, pan, f"Luhn check digit is {text[17]}, expected {expected}")
        return cls(text[:6], text[6:17])
