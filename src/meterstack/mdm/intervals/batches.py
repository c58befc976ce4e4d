"""Turning an ingest batch (Arrow) into checked numpy columns, row rejections included.

Everything here is vectorised: strings are dictionary-encoded once and looked up per
distinct value, never per row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from meterstack.core.errors import InvalidInputError
from meterstack.core.obis import ObisCode
from meterstack.mdm.ingest import RejectedRow

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
F64 = npt.NDArray[np.float64]
BOOL = npt.NDArray[np.bool_]


@dataclass
class Rejections:
    """Rows refused so far, by their index in the batch."""

    index: list[I64] = field(default_factory=list)
    reason: list[str] = field(default_factory=list)

    def add(self, rows: I64, reason: str) -> None:
        if rows.size:
            self.index.append(rows)
            self.reason.extend([reason] * int(rows.size))

    def rows(self) -> tuple[RejectedRow, ...]:
        if not self.index:
            return ()
        index = np.concatenate(self.index)
        order = np.argsort(index, kind="stable")
        return tuple(RejectedRow(int(index[i]), self.reason[i]) for i in order)


def require_columns(batch: pa.Table, schema: pa.Schema, what: str) -> pa.Table:
    """``batch`` with the columns of ``schema`` cast to its types (extra columns are kept;
    a dictionary-encoded column of the right value type is kept as it is).

    Raises
    ------
    InvalidInputError
        A column is missing or cannot be cast: the batch as a whole is malformed.
    """
    if not isinstance(batch, pa.Table):
        if isinstance(batch, pa.RecordBatch):
            batch = pa.Table.from_batches([batch])
        else:
            raise InvalidInputError(what, type(batch).__name__, "expected a pyarrow Table")
    columns = {}
    for schema_field in schema:
        if schema_field.name not in batch.column_names:
            raise InvalidInputError(
                f"{what}.{schema_field.name}", None, f"the batch has no column {schema_field.name}"
            )
        column = batch.column(schema_field.name)
        kept_as_dictionary = (
            pa.types.is_dictionary(column.type) and column.type.value_type == schema_field.type
        )
        if column.type != schema_field.type and not kept_as_dictionary:
            try:
                column = column.cast(schema_field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise InvalidInputError(
                    f"{what}.{schema_field.name}",
                    str(column.type),
                    f"cannot be read as {schema_field.type}: {exc}",
                ) from exc
        columns[schema_field.name] = column
    for name in batch.column_names:
        if name not in columns:
            columns[name] = batch.column(name)
    return pa.table(columns)


def null_rows(batch: pa.Table, names: tuple[str, ...]) -> BOOL:
    """Rows where any of ``names`` is null."""
    mask = np.zeros(batch.num_rows, dtype=bool)
    for name in names:
        column = batch.column(name)
        if column.null_count:
            mask |= np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    return mask


def lookup_strings(
    column: pa.ChunkedArray, resolve: Callable[[list[str]], Mapping[str, int]]
) -> tuple[I64, list[str]]:
    """Map each row's string to an id with ``resolve`` (called once with the distinct values).

    A dictionary-encoded column is used as it is; a plain one is encoded first (one hash
    pass over the rows). Returns the ids (-1 for a null or for a value ``resolve`` left
    out) and the distinct values that were left out.
    """
    if column.num_chunks == 1:
        array = column.chunk(0)
    elif pa.types.is_dictionary(column.type):
        array = column.cast(column.type.value_type).combine_chunks()
    else:
        array = column.combine_chunks()
    encoded = array if pa.types.is_dictionary(array.type) else pc.dictionary_encode(array)
    dictionary = encoded.dictionary.to_pylist()
    table = resolve([value for value in dictionary if value is not None])
    # One more slot at the end: where null indices point.
    ids = np.array(
        [table.get(value, -1) if value is not None else -1 for value in dictionary] + [-1],
        dtype=np.int64,
    )
    indices = encoded.indices
    if indices.null_count:
        indices = indices.fill_null(len(dictionary))
    out: I64 = ids[np.asarray(indices.to_numpy(zero_copy_only=False))]
    missing = [value for value in dictionary if value is not None and value not in table]
    return out, missing


def timestamps_s(column: pa.ChunkedArray) -> I64:
    """POSIX seconds of a timestamp column (nulls become 0; check nulls first)."""
    as_int = column.cast(pa.timestamp("s", tz="UTC"), safe=False).cast(pa.int64())
    return np.asarray(as_int.fill_null(0).to_numpy(), dtype=np.int64)


def timestamps_us(column: pa.ChunkedArray) -> I64:
    as_int = column.cast(pa.timestamp("us", tz="UTC"), safe=False).cast(pa.int64())
    return np.asarray(as_int.fill_null(0).to_numpy(), dtype=np.int64)


def floats(column: pa.ChunkedArray) -> F64:
    return np.asarray(column.fill_null(np.nan).to_numpy(), dtype=np.float64)


def ints(column: pa.ChunkedArray, dtype: type[np.signedinteger]) -> npt.NDArray[np.signedinteger]:
    return np.asarray(column.fill_null(0).to_numpy(), dtype=dtype)


def valid_obis(values: list[str]) -> dict[str, str]:
    """The valid OBIS codes among ``values``, each to its dotted canonical form."""
    out = {}
    for value in values:
        try:
            out[value] = str(ObisCode.parse(value))
        except InvalidInputError:
            continue
    return out


@dataclass
class IntervalRows:
    """Checked interval rows, sorted by key, each with its index in the batch."""

    meter_id: I64
    channel_id: I64
    interval_end: I64  # POSIX seconds
    value: F64
    status: I64
    duration_s: I64 | None  # -1: the meter's own interval length; None: -1 for every row
    source: I64
    round: I64  # 0: first occurrence of its key in the batch; 1: the second...

    def take(self, mask: BOOL | I64) -> IntervalRows:
        return IntervalRows(
            self.meter_id[mask],
            self.channel_id[mask],
            self.interval_end[mask],
            self.value[mask],
            self.status[mask],
            None if self.duration_s is None else self.duration_s[mask],
            self.source[mask],
            self.round[mask],
        )

    def rounds(self) -> list[IntervalRows]:
        """The rows split so that no part holds a key twice, first occurrences first."""
        if len(self) == 0:
            return []
        top = int(self.round.max())
        if top == 0:
            return [self]
        return [self.take(self.round == r) for r in range(top + 1)]

    @property
    def has_duration(self) -> bool:
        return self.duration_s is not None and bool((self.duration_s >= 0).any())

    def durations(self) -> I64:
        """``duration_s`` with -1 where the meter's own interval length applies."""
        if self.duration_s is None:
            return np.full(len(self), -1, dtype=np.int64)
        return self.duration_s

    def __len__(self) -> int:
        return int(self.meter_id.size)


def channel_key(meter_id: I64, channel_id: I64) -> I64:
    """One int64 per (meter, channel): meter ids are int32, channel ids int16."""
    key: I64 = (meter_id << 16) | channel_id
    return key


def sort_and_dedupe(rows: IntervalRows) -> tuple[IntervalRows, int]:
    """Sort by key; drop exact repeats of an earlier row in the batch; number the rest.

    A key that comes again in the same batch with another value is a revision of the first:
    it keeps ``round`` 1 (2, ...) and is applied after it, in batch order. A batch that is
    already sorted with unique keys (what a head-end usually sends) is checked in one pass
    and used as it is.
    """
    if len(rows) < 2:
        return rows, 0
    key = channel_key(rows.meter_id, rows.channel_id)
    step = np.diff(key)
    ascending = (step > 0) | ((step == 0) & (np.diff(rows.interval_end) > 0))
    if ascending.all():
        return rows, 0
    # numpy's lexsort is stable: rows with the same key stay in batch order.
    order = np.lexsort((rows.interval_end, key))
    rows = rows.take(order)
    key = key[order]
    same_key = np.zeros(len(rows), dtype=bool)
    same_key[1:] = (key[1:] == key[:-1]) & (rows.interval_end[1:] == rows.interval_end[:-1])
    if not same_key.any():
        return rows, 0
    # Exact repeats of the previous occurrence are duplicates.
    same_value = np.zeros(len(rows), dtype=bool)
    same_value[1:] = (rows.value[1:] == rows.value[:-1]) & (rows.status[1:] == rows.status[:-1])
    repeat = same_key & same_value
    keep = ~repeat
    rows = rows.take(keep)
    same_key = same_key[keep]
    # Occurrence number within each key group.
    group_start = np.flatnonzero(~same_key)
    group_id = np.cumsum(~same_key) - 1
    rows.round = np.arange(len(rows), dtype=np.int64) - group_start[group_id]
    return rows, int(repeat.sum())
