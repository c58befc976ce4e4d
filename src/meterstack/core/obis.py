"""OBIS codes: the six-group identifiers of metering quantities.

References
----------
.. [1] IEC 62056-6-1:2017, Electricity metering data exchange - The DLMS/COSEM suite -
   Part 6-1: Object Identification System (OBIS).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from meterstack.core.errors import InvalidInputError

# "1.0.1.8.0.255", "1-0:1.8.0*255", "1-0:1.8.0.255", "1.0.1.8.0" (F defaults to 255).
_OBIS_PATTERN = re.compile(
    r"^\s*(\d{1,3})[.-](\d{1,3})[:.](\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:[.*](\d{1,3}))?\s*$"
)


@dataclass(frozen=True, slots=True, order=True)
class ObisCode:
    """One OBIS code, groups A to F, each 0-255.

    ``str()`` gives the dotted form used throughout meterstack, ``1.0.1.8.0.255``.
    """

    a: int
    b: int
    c: int
    d: int
    e: int
    f: int = 255

    def __post_init__(self) -> None:
        for name in ("a", "b", "c", "d", "e", "f"):
            group = getattr(self, name)
            if not isinstance(group, int) or not 0 <= group <= 255:
                raise InvalidInputError(f"obis.{name}", group, "each OBIS group is 0-255")

    @classmethod
    def parse(cls, text: str) -> ObisCode:
        """Parse the dotted form or the IEC reduced form (``1-0:1.8.0*255``)."""
        match = _OBIS_PATTERN.match(text) if isinstance(text, str) else None
        if match is None:
            raise InvalidInputError(
                "obis", text, "expected six groups like 1.0.1.8.0.255 or 1-0:1.8.0*255"
            )
        groups = [int(g) if g is not None else 255 for g in match.groups()]
        return cls(*groups)

    def to_bytes(self) -> bytes:
        """The 6-octet logical name used on the wire by DLMS/COSEM."""
        return bytes((self.a, self.b, self.c, self.d, self.e, self.f))

    def __str__(self) -> str:
        return f"{self.a}.{self.b}.{self.c}.{self.d}.{self.e}.{self.f}"
