"""Modbus register values: typed quantities in 16-bit registers, and register-map files.

A value of type ``uint16``/``int16`` takes one register; ``uint32``/``int32``/``float32``
two; ``uint64``/``int64``/``float64`` four; ``string`` as many as its length says (two
ASCII characters a register). Multi-register values are big-endian within a register and,
by default, most significant word first (the Modbus convention; ``word_order = "little"``
for meters that swap words). The quantity is ``raw x 10^scale`` in ``unit``.

A register-map file (TOML or YAML) lists the registers of a meter::

    [meter]
    name = "Example 3-phase meter"
    word_order = "big"

    [[registers]]
    name = "active_energy_import"
    address = 100          # PDU address (0-based)
    function = "holding"   # or "input"
    type = "uint64"
    scale = 0
    unit = "Wh"
    obis = "1.0.1.8.0.255" # optional

References
----------
.. [1] Modbus Application Protocol Specification V1.1b3 (Modbus Organization, 2012),
   4.3 "Data encoding", 6.3 and 6.4 (read holding and input registers).
"""

from __future__ import annotations

import math
import struct
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from meterstack.core.errors import ConfigError, InvalidInputError
from meterstack.core.obis import ObisCode

RegisterType = Literal[
    "uint16", "int16", "uint32", "int32", "uint64", "int64", "float32", "float64", "string"
]
_FORMATS: dict[str, tuple[str, int]] = {
    "uint16": (">H", 1),
    "int16": (">h", 1),
    "uint32": (">I", 2),
    "int32": (">i", 2),
    "uint64": (">Q", 4),
    "int64": (">q", 4),
    "float32": (">f", 2),
    "float64": (">d", 4),
}
#: The most registers one read may ask for [1]_ 6.3.
MAX_READ = 125


def register_count(kind: str, length: int = 0) -> int:
    if kind == "string":
        return (length + 1) // 2
    return _FORMATS[kind][1]


def encode_value(
    value: float | int | str,
    kind: str,
    *,
    scale: int = 0,
    word_order: str = "big",
    length: int = 0,
) -> list[int]:
    """The registers holding ``value`` (a quantity in its unit) as ``kind``.

    Raises
    ------
    InvalidInputError
        The scaled value does not fit the type (it never wraps round).
    """
    if kind == "string":
        raw = str(value).encode("ascii")[:length].ljust(length, b"\x00")
        if len(raw) % 2:
            raw += b"\x00"
        return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    fmt, count = _FORMATS[kind]
    if isinstance(value, str):
        raise InvalidInputError("value", value, f"a number for {kind}")
    if kind.startswith("float"):
        number: float | int = float(value) / 10.0**scale
    else:
        scaled = float(value) / 10.0**scale if scale else value
        if isinstance(scaled, float) and not math.isfinite(scaled):
            raise InvalidInputError("value", value, "a finite number")
        number = round(scaled)
    try:
        octets = struct.pack(fmt, number)
    except struct.error as exc:
        raise InvalidInputError("value", value, f"does not fit {kind} at scale {scale}") from exc
    words = [int.from_bytes(octets[i : i + 2], "big") for i in range(0, 2 * count, 2)]
    return words[::-1] if word_order == "little" else words


def decode_value(
    registers: Sequence[int], kind: str, *, scale: int = 0, word_order: str = "big"
) -> float | int | str:
    """The quantity held in ``registers`` as ``kind`` (``raw x 10^scale``)."""
    words = list(registers)
    if kind == "string":
        raw = b"".join(w.to_bytes(2, "big") for w in words)
        return raw.rstrip(b"\x00").decode("ascii", "replace")
    fmt, count = _FORMATS[kind]
    if len(words) != count:
        raise InvalidInputError("registers", registers, f"{kind} takes {count} registers")
    if word_order == "little":
        words.reverse()
    (raw,) = struct.unpack(fmt, b"".join(w.to_bytes(2, "big") for w in words))
    if scale == 0:
        return raw  # type: ignore[no-any-return]
    return float(raw) * 10.0**scale


@dataclass(frozen=True, slots=True)
class RegisterDefinition:
    """One entry of a register map."""

    name: str
    address: int
    kind: str
    function: Literal["holding", "input"] = "holding"
    scale: int = 0
    unit: str = ""
    obis: ObisCode | None = None
    length: int = 0
    writable: bool = False
    description: str = ""

    @property
    def count(self) -> int:
        return register_count(self.kind, self.length)


@dataclass(frozen=True, slots=True)
class RegisterMap:
    """The registers of one meter model, as a register-map file describes them."""

    name: str
    registers: tuple[RegisterDefinition, ...]
    word_order: Literal["big", "little"] = "big"

    @classmethod
    def load(cls, path: Path | str) -> RegisterMap:
        """Read a register-map file (``.toml``, ``.yaml`` or ``.yml``).

        Raises
        ------
        ConfigError
            The file is missing, unreadable, or an entry is invalid; the message names the
            file, the entry and the field.
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"register map {path} cannot be read: {exc}") from exc
        try:
            if path.suffix == ".toml":
                raw: Any = tomllib.loads(text)
            elif path.suffix in (".yaml", ".yml"):
                raw = yaml.safe_load(text)
            else:
                raise ConfigError(f"register map {path}: use a .toml, .yaml or .yml file")
        except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(f"register map {path} is not valid: {exc}") from exc
        return cls.parse(raw, str(path))

    @classmethod
    def parse(cls, raw: Any, source: str = "register map") -> RegisterMap:
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: expected a table with [meter] and [[registers]]")
        meter = raw.get("meter", {})
        word_order = meter.get("word_order", "big")
        if word_order not in ("big", "little"):
            raise ConfigError(f"{source}: meter.word_order={word_order!r} is not big or little")
        entries = raw.get("registers")
        if not isinstance(entries, list) or not entries:
            raise ConfigError(f"{source}: no [[registers]] entries")
        definitions = []
        names: set[str] = set()
        for index, entry in enumerate(entries):
            where = f"{source}: registers[{index}]"
            if not isinstance(entry, dict):
                raise ConfigError(f"{where} is not a table")
            name = entry.get("name")
            if not isinstance(name, str) or not name:
                raise ConfigError(f"{where}.name is missing")
            if name in names:
                raise ConfigError(f"{where}.name={name!r} appears twice")
            names.add(name)
            address = entry.get("address")
            if not isinstance(address, int) or not 0 <= address <= 0xFFFF:
                raise ConfigError(f"{where}.address={address!r} is not 0-65535")
            kind = entry.get("type")
            if kind not in (*_FORMATS, "string"):
                raise ConfigError(f"{where}.type={kind!r} is not one of {', '.join(_FORMATS)}")
            function = entry.get("function", "holding")
            if function not in ("holding", "input"):
                raise ConfigError(f"{where}.function={function!r} is not holding or input")
            scale = entry.get("scale", 0)
            if not isinstance(scale, int) or not -9 <= scale <= 9:
                raise ConfigError(f"{where}.scale={scale!r} is not an integer -9..9")
            length = entry.get("length", 0)
            if kind == "string" and (not isinstance(length, int) or length <= 0):
                raise ConfigError(f"{where}.length is needed for a string")
            obis = entry.get("obis")
            try:
                code = ObisCode.parse(obis) if obis is not None else None
            except InvalidInputError as exc:
                raise ConfigError(f"{where}.obis={obis!r}: {exc.reason}") from exc
            definition = RegisterDefinition(
                name,
                address,
                kind,
                function,
                scale,
                str(entry.get("unit", "")),
                code,
                length,
                bool(entry.get("writable", False)),
                str(entry.get("description", "")),
            )
            if address + definition.count > 0x10000:
                raise ConfigError(f"{where}: runs past register 65535")
            definitions.append(definition)
        return cls(str(meter.get("name", source)), tuple(definitions), word_order)

    def blocks(self, function: str) -> list[tuple[int, int, list[RegisterDefinition]]]:
        """Reads of at most 125 contiguous registers covering every entry of ``function``."""
        entries = sorted(
            (d for d in self.registers if d.function == function), key=lambda d: d.address
        )
        blocks: list[tuple[int, int, list[RegisterDefinition]]] = []
        for definition in entries:
            end = definition.address + definition.count
            if blocks:
                start, count, members = blocks[-1]
                if end - start <= MAX_READ and definition.address == start + count:
                    blocks[-1] = (start, max(count, end - start), [*members, definition])
                    continue
            blocks.append((definition.address, definition.count, [definition]))
        return blocks
