"""PostgreSQL's binary COPY format, written and read with numpy (no Python loop per row).

Each tuple is a 16-bit field count, then per field a 32-bit length and the value in network
byte order; timestamps are microseconds since 2000-01-01 UTC.

References
----------
.. [1] PostgreSQL 15 documentation, COPY, "Binary Format".
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
HEADER = SIGNATURE + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
PG_EPOCH_S = 946_684_800  # 2000-01-01T00:00:00Z in POSIX seconds

#: Column kinds: numpy big-endian type of the value.
TYPES = {
    "int2": ">i2",
    "int4": ">i4",
    "int8": ">i8",
    "float8": ">f8",
    "timestamptz": ">i8",
}


def _row_dtype(kinds: Sequence[str]) -> np.dtype[np.void]:
    fields: list[tuple[str, str]] = [("count", ">i2")]
    for i, kind in enumerate(kinds):
        fields += [(f"len{i}", ">i4"), (f"v{i}", TYPES[kind])]
    return np.dtype(fields)


def _tuples(columns: Sequence[tuple[str, npt.NDArray[np.generic]]], start: int, stop: int) -> bytes:
    rows = np.empty(stop - start, dtype=_row_dtype([kind for kind, _ in columns]))
    rows["count"] = len(columns)
    for i, (kind, values) in enumerate(columns):
        rows[f"len{i}"] = np.dtype(TYPES[kind]).itemsize
        part = values[start:stop]
        if kind == "timestamptz":
            rows[f"v{i}"] = (part.astype(np.int64) - PG_EPOCH_S) * 1_000_000
        else:
            rows[f"v{i}"] = part
    return rows.tobytes()


def encode(columns: Sequence[tuple[str, npt.NDArray[np.generic]]]) -> bytes:
    """Binary COPY data for rows made of ``columns`` (kind, values); timestamps are given
    in POSIX seconds. No value may be null."""
    n = int(columns[0][1].size) if columns else 0
    return HEADER + _tuples(columns, 0, n) + TRAILER


def encode_chunks(
    columns: Sequence[tuple[str, npt.NDArray[np.generic]]], rows_per_chunk: int = 65_536
) -> Iterator[bytes]:
    """The data of :func:`encode` in pieces of ``rows_per_chunk`` rows, made one at a time,
    so that a COPY can send one piece while the server is still storing the one before."""
    n = int(columns[0][1].size) if columns else 0
    yield HEADER
    for start in range(0, n, rows_per_chunk):
        yield _tuples(columns, start, min(n, start + rows_per_chunk))
    yield TRAILER


def decode(data: bytes, kinds: Sequence[str]) -> list[npt.NDArray[np.generic]]:
    """Columns of binary COPY output whose fields are all of fixed width and non-null.

    Timestamps come back as POSIX seconds (int64, truncated). Native byte order.
    """
    if not data.startswith(SIGNATURE):
        raise ValueError("not PostgreSQL binary COPY data")
    extension = int.from_bytes(data[15:19], "big")
    body = memoryview(data)[19 + extension : len(data) - len(TRAILER)]
    dtype = _row_dtype(kinds)
    if len(body) % dtype.itemsize:
        raise ValueError("binary COPY rows are not of the expected fixed width (a null?)")
    rows = np.frombuffer(body, dtype=dtype)
    out: list[npt.NDArray[np.generic]] = []
    for i, kind in enumerate(kinds):
        column = rows[f"v{i}"].astype(np.dtype(TYPES[kind]).newbyteorder("="))
        if kind == "timestamptz":
            column = column // 1_000_000 + PG_EPOCH_S
        out.append(column)
    return out
