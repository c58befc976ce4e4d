"""Readers: waveform records from CSV files (COMTRADE: :mod:`.comtrade_reader`).

Readers open only the files they are given and return a validated
:class:`~meterstack.metrology.record.WaveformRecord`; a file that cannot be read raises a
:class:`~meterstack.metrology.record.WaveformError` naming the file, the line or the
channel.

CSV
---
A header line names the columns, then one row of samples per line, comma separated:
``va,vb,vc,ia,ib,ic`` (three phases) or ``v,i`` (one phase); voltage-only files
(``va,vb,vc`` or ``v``) are accepted too. Voltages in V, currents in A. The sampling
rate is not in the file: it is passed in.
"""

from __future__ import annotations

import csv
import io
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from meterstack.metrology.record import WaveformError, WaveformRecord, make_record

__all__ = ["CSV_LAYOUTS", "read_csv"]

#: Accepted CSV headers: (voltage columns, current columns).
CSV_LAYOUTS: dict[tuple[str, ...], tuple[tuple[str, ...], tuple[str, ...]]] = {
    ("va", "vb", "vc", "ia", "ib", "ic"): (("va", "vb", "vc"), ("ia", "ib", "ic")),
    ("v", "i"): (("v",), ("i",)),
    ("va", "vb", "vc"): (("va", "vb", "vc"), ()),
    ("v",): (("v",), ()),
}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def read_csv(
    path: str | Path, fs_hz: float, f0_hz: int = 50, start: datetime = _EPOCH
) -> WaveformRecord:
    """Read a CSV waveform file (module docstring for the layout).

    Parameters
    ----------
    path : str or Path
        The file.
    fs_hz : float
        Sampling rate of the rows. [Hz]
    f0_hz : int
        Nominal frequency, 50 or 60. [Hz]
    start : datetime
        UTC time of the first row.

    Raises
    ------
    WaveformError
        Unreadable file, unknown header, a cell that is not a number, columns of different
        lengths, or anything :func:`~meterstack.metrology.record.make_record` rejects.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise WaveformError(str(file), "unreadable", f"cannot read the file: {exc}") from exc
    first_line, _, body = text.partition("\n")
    header = tuple(cell.strip().lower() for cell in first_line.split(","))
    if header not in CSV_LAYOUTS:
        raise WaveformError(
            f"{file.name}:1",
            first_line.strip(),
            "unknown header; expected one of: "
            + "; ".join(",".join(columns) for columns in CSV_LAYOUTS),
        )
    voltage_names, current_names = CSV_LAYOUTS[header]
    columns = len(header)
    if not body.strip():
        raise WaveformError(file.name, 0, "the file has a header but no samples")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            table = np.loadtxt(io.StringIO(body), delimiter=",", ndmin=2, dtype=np.float64)
    except (ValueError, UserWarning) as exc:
        raise _locate_csv_problem(file, body, header) from exc
    if table.shape[0] == 0:
        raise WaveformError(file.name, 0, "the file has a header but no samples")
    if table.shape[1] != columns:
        raise WaveformError(
            f"{file.name}:2", table.shape[1], f"rows have {table.shape[1]} cells, not {columns}"
        )
    samples = table.T
    phases = len(voltage_names)
    return make_record(
        samples[:phases],
        samples[phases:] if current_names else None,
        fs_hz,
        f0_hz,
        start,
        voltage_names=voltage_names,
        current_names=current_names or None,
    )


def _locate_csv_problem(file: Path, body: str, header: tuple[str, ...]) -> WaveformError:
    """Find the first bad line of a CSV body and describe it."""
    counts = [0] * len(header)
    for offset, row in enumerate(csv.reader(io.StringIO(body))):
        line = offset + 2
        if not row:
            continue
        cells = [cell.strip() for cell in row]
        if len(cells) > len(header):
            return WaveformError(
                f"{file.name}:{line}", len(cells), f"more cells than the {len(header)} columns"
            )
        for column, name in enumerate(header):
            cell = cells[column] if column < len(cells) else ""
            if cell == "":
                continue
            if counts[column] < offset:
                return WaveformError(
                    name,
                    counts[column],
                    f"channels of different lengths: column {name} has a gap before line {line}",
                )
            try:
                float(cell)
            except ValueError:
                return WaveformError(f"{file.name}:{line}:{name}", cell, "not a number")
            counts[column] += 1
    lengths = dict(zip(header, counts, strict=True))
    longest = max(counts)
    short = [name for name, count in lengths.items() if count < longest]
    if short:
        return WaveformError(
            short[0],
            lengths[short[0]],
            f"channels of different lengths: {short[0]} has {lengths[short[0]]} samples, "
            f"{header[counts.index(longest)]} has {longest}",
        )
    return WaveformError(file.name, "unparsable", "the rows cannot be read as numbers")
