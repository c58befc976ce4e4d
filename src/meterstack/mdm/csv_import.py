"""CSV import of interval readings.

The file has a header row naming at least ``meter``, ``channel`` (an OBIS code),
``interval_end`` (ISO 8601 with its UTC offset, the end of the interval) and ``value``;
optionally ``status`` (the meter's status word) and ``unit`` (one of
:data:`meterstack.mdm.channels.CSV_UNITS`; the value is converted to the channel's unit).
A row that cannot be read is rejected with its line number and reason; the rest are kept,
each with the line it came from, so that rows the store refuses (an unknown meter) are
reported by line too.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow as pa

from meterstack.mdm.channels import CSV_UNITS, unit_of
from meterstack.mdm.errors import FileFormatError
from meterstack.mdm.ingest import INTERVAL_SCHEMA

REQUIRED = ("meter", "channel", "interval_end", "value")


@dataclass(frozen=True)
class ParsedCsv:
    """A CSV file's readings, the line each came from, and the lines that were refused."""

    batch: pa.Table
    lines: list[int]
    rejected: list[tuple[int, str]]


def parse_interval_csv(path: Path) -> ParsedCsv:
    """The readings of a CSV file (:data:`INTERVAL_SCHEMA`), their lines, and the rejected
    lines with their reasons.

    Raises
    ------
    FileFormatError
        The file cannot be read, is not UTF-8, is not valid CSV (a stray or unterminated
        quote), or its header lacks a required column.
    """
    rows: dict[str, list[object]] = {name: [] for name in INTERVAL_SCHEMA.names}
    lines: list[int] = []
    rejected: list[tuple[int, str]] = []
    try:
        with Path(path).open(newline="", encoding="utf-8") as handle:
            # strict: a stray or unterminated quote is an error, not lines run together.
            reader = csv.DictReader(handle, strict=True)
            header = [h.strip() for h in reader.fieldnames or []]
            missing = [name for name in REQUIRED if name not in header]
            if missing:
                raise FileFormatError(
                    "header", ",".join(header), f"{path}: missing column(s) {', '.join(missing)}"
                )
            reader.fieldnames = header
            for record in reader:
                line = reader.line_num
                extra = record.get(None)
                if extra:
                    fields = len(header) + len(extra)
                    rejected.append((line, f"has {fields} fields, the header {len(header)}"))
                    continue
                try:
                    parsed = _row(record)
                except ValueError as exc:
                    rejected.append((line, str(exc)))
                    continue
                for name, value in zip(INTERVAL_SCHEMA.names, parsed, strict=True):
                    rows[name].append(value)
                lines.append(line)
    except UnicodeDecodeError as exc:
        raise FileFormatError("file", str(path), f"is not UTF-8 text: {exc}") from exc
    except csv.Error as exc:
        raise FileFormatError("file", str(path), f"is not valid CSV: {exc}") from exc
    except OSError as exc:
        raise FileFormatError("file", str(path), f"cannot be read: {exc}") from exc
    return ParsedCsv(pa.table(rows, schema=INTERVAL_SCHEMA), lines, rejected)


def _row(record: dict[str, str | None]) -> tuple[str, str, datetime, float, int]:
    def field(name: str) -> str:
        value = (record.get(name) or "").strip()
        if not value:
            raise ValueError(f"{name} is empty")
        return value

    meter = field("meter")
    channel = field("channel")
    text = field("interval_end")
    try:
        end = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"interval_end={text!r} is not an ISO 8601 time") from None
    if end.tzinfo is None:
        raise ValueError(f"interval_end={text!r} has no UTC offset")
    try:
        value = float(field("value"))
    except ValueError:
        raise ValueError(f"value={record.get('value')!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"value={record.get('value')!r} is not finite")
    status_text = (record.get("status") or "").strip()
    try:
        status = int(status_text) if status_text else 0
    except ValueError:
        raise ValueError(f"status={status_text!r} is not an integer") from None
    unit = (record.get("unit") or "").strip()
    if unit:
        if unit not in CSV_UNITS:
            raise ValueError(f"unit={unit!r} is not known (known: {', '.join(CSV_UNITS)})")
        stored, factor = CSV_UNITS[unit]
        expected = unit_of(channel)
        if expected is not None and expected != stored:
            raise ValueError(f"unit={unit!r} does not fit channel {channel} (in {expected})")
        value *= factor
    return meter, channel, end, value, status
