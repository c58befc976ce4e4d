"""The 16-bit amount field: a 2-bit exponent and a 14-bit mantissa, rounded up.

Credit and power-limit tokens carry a quantity ``t`` in the field's resolution (0.1 kWh for
electricity credit, W for a maximum power limit) as an exponent ``e`` (bits 15-14) and a
mantissa ``m`` (bits 13-0):

    t = m * 10**e + sum(2**14 * 10**(n - 1) for n in 1..e)        [1]

so each exponent continues where the previous one ends (e = 0 covers 0-16383, e = 1 starts
at 16384 in steps of 10, and so on up to 18 201 624). A quantity that falls between two
representable values is rounded up, carrying into the next exponent when the mantissa
would overflow; the customer never receives less than was paid for [1].

References
----------
.. [1] IEC 62055-41:2018, the Amount data element (exponent and mantissa coding).
"""

from __future__ import annotations

from meterstack.sts.errors import StsInputError

__all__ = ["MAX_AMOUNT", "amount_base", "decode_amount", "encode_amount"]

_MANTISSA_LIMIT = 1 << 14
_TEN_TO = (1, 10, 100, 1000)


def amount_base(exponent: int) -> int:
    """The smallest quantity coded with ``exponent``: sum(2**14 * 10**(n-1), n = 1..e)."""
    return sum(_MANTISSA_LIMIT * _TEN_TO[n - 1] for n in range(1, exponent + 1))


#: The largest quantity the field can carry (e = 3, m = 16383): 18 201 624 units.
MAX_AMOUNT = amount_base(3) + (_MANTISSA_LIMIT - 1) * _TEN_TO[3]


def encode_amount(quantity: int) -> int:
    """Code ``quantity`` as the 16-bit amount field, rounding up.

    Parameters
    ----------
    quantity : int
        The amount in the field's resolution [0.1 kWh, W, ...], 0 to :data:`MAX_AMOUNT`.

    Returns
    -------
    code : int
        ``e << 14 | m``, the smallest code whose value (equation [1]) is >= ``quantity``.
    """
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise StsInputError("amount", quantity, "the amount is a whole number of units")
    if not 0 <= quantity <= MAX_AMOUNT:
        raise StsInputError("amount", quantity, f"must be 0 to {MAX_AMOUNT} units")
    for exponent in range(4):
        step = _TEN_TO[exponent]
        mantissa = -(-(quantity - amount_base(exponent)) // step)  # ceiling division
        if mantissa < _MANTISSA_LIMIT:
            return (exponent << 14) | max(mantissa, 0)
    raise AssertionError("unreachable: quantity was checked against MAX_AMOUNT")


def decode_amount(code: int) -> int:
    """The quantity [field units] that the 16-bit amount field ``code`` carries."""
    if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code <= 0xFFFF:
        raise StsInputError("amount_code", code, "the amount field is 16 bits")
    exponent, mantissa = code >> 14, code & (_MANTISSA_LIMIT - 1)
    return mantissa * _TEN_TO[exponent] + amount_base(exponent)
