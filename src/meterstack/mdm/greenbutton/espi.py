"""Names of the Atom and NAESB ESPI XML vocabularies used by Green Button files."""

from __future__ import annotations

ATOM = "http://www.w3.org/2005/Atom"
ESPI = "http://naesb.org/espi"


def atom(tag: str) -> str:
    return f"{{{ATOM}}}{tag}"


def espi(tag: str) -> str:
    return f"{{{ESPI}}}{tag}"
