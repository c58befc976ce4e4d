"""Nothing half-written: a write that fails part-way leaves the store as it was, on both
backends, and the store takes the same batch whole afterwards."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest

from meterstack.core.errors import StoreError
from meterstack.mdm.intervals import IntervalStore, MeterRegistration, PostgresIntervalStore

from .conftest import intervals

A = "1.0.1.8.0.255"
MARCH = int(datetime(2024, 3, 1, tzinfo=UTC).timestamp())


class PowerCutError(RuntimeError):
    """The fault injected part-way through a write (not a database error)."""


def _cut_after_writing(store: IntervalStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the store's last write step of an ingest fail, after the earlier steps wrote
    their rows into the (real) database inside the ingest's transaction."""
    if isinstance(store, PostgresIntervalStore):
        # COPY of the new rows and the merge of the repeat are done; the watermark is last.
        def cut(*args: object) -> None:
            raise PowerCutError("power cut after the COPY and the merge")

        monkeypatch.setattr(store, "_advance_watermark", cut)
    else:
        real = store._merge_intervals  # type: ignore[attr-defined]
        calls: list[int] = []

        def cut_second(rows: object) -> tuple[int, int, int]:
            calls.append(1)
            if len(calls) == 2:
                raise PowerCutError("power cut after the first round was inserted")
            return real(rows)  # type: ignore[no-any-return]

        monkeypatch.setattr(store, "_merge_intervals", cut_second)


def test_an_ingest_that_fails_part_way_writes_nothing(
    store: IntervalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.register_meters([MeterRegistration("M1")])
    ends = MARCH + 1800 * np.arange(1, 5)  # a month no partition exists for yet
    # The repeat of the first key makes a second round: a revision after the inserts.
    batch = pa.concat_tables(
        [intervals("M1", ends, [1.0, 2.0, 3.0, 4.0]), intervals("M1", ends[:1], [9.0])]
    )
    _cut_after_writing(store, monkeypatch)
    with pytest.raises(PowerCutError):
        store.ingest_intervals(batch)
    monkeypatch.undo()
    march = (datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 4, 1, tzinfo=UTC))
    assert store.read_intervals(*march).num_rows == 0
    assert store.revisions("M1", A, datetime.fromtimestamp(int(ends[0]), UTC)) == []
    # The store is whole and usable: the same batch now lands complete.
    result = store.ingest_intervals(batch)
    assert (result.inserted, result.revisions, result.duplicates) == (4, 1, 0)
    stored = store.read_intervals(*march, ["M1"])
    assert stored.column("value").to_pylist() == [9.0, 2.0, 3.0, 4.0]


def test_a_validated_write_that_fails_writes_nothing(
    store: IntervalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database error inside a validated write (here a real one: a NOT NULL violation
    raised by the server) leaves no partition or row behind and the store usable."""
    store.register_meters([MeterRegistration("M1")])
    end = datetime.fromtimestamp(MARCH + 1800, UTC)
    good = {
        "meter": ["M1"],
        "channel": [A],
        "interval_end": [end],
        "value": [5.0],
        "quality": ["A"],
        "method": pa.array([0], pa.int8()),
        "checks": pa.array([0], pa.int32()),
    }
    real = store._write_validated  # type: ignore[attr-defined]

    def write_then_fail(rows: dict[str, np.ndarray], actor: str) -> object:
        return real(rows, None)  # actor NULL: the database refuses the row

    monkeypatch.setattr(store, "_write_validated", write_then_fail)
    with pytest.raises(StoreError, match="actor"):
        store.write_validated(pa.table(good), "vee")
    monkeypatch.undo()
    march = (datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 4, 1, tzinfo=UTC))
    assert store.read_validated(*march).num_rows == 0
    assert store.write_validated(pa.table(good), "vee").inserted == 1
    assert store.read_validated(*march).column("value").to_pylist() == [5.0]
