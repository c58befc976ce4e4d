"""Known answers for the VEE checks that need the store around them (reverse flow, time
tolerance, the sum check against register reads), on DuckDB and on PostgreSQL.

Every expected value is worked out by hand in the test from the load it writes: an hourly
profile ``100 + 10 h`` Wh (``h`` the hour of the day), so a whole day sums to
``24 * 100 + 10 * (0 + 1 + ... + 23) = 5160`` Wh.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest

from meterstack.mdm.ingest import REGISTER_SCHEMA
from meterstack.mdm.intervals import IntervalStore, MeterRegistration
from meterstack.mdm.quality import Check, Method, Quality
from meterstack.mdm.vee import run_vee

from .conftest import intervals, t

A_PLUS = "1.0.1.8.0.255"
A_MINUS = "1.0.2.8.0.255"
HOUR = 3600
DAY_SUM = 24 * 100 + 10 * sum(range(24))  # 5160 Wh
ENDS = int(t(1).timestamp()) + HOUR * np.arange(1, 24 * 11 + 1)  # 1 Jan 01:00 .. 12 Jan 00:00
PROFILE = 100.0 + 10.0 * (np.arange(ENDS.size) % 24)
WINDOW = (t(10), t(11))  # the day VEE reports on: 24 intervals, hours 0..23 of 10 Jan
FIRST = 24 * 9  # index of the window's first interval (ends 10 Jan 01:00)


def _validated(store: IntervalStore, meter: str, channel: str) -> pa.Table:
    return store.read_validated(*WINDOW, [meter], [channel])


def _vee(store: IntervalStore) -> None:
    run_vee(store, *WINDOW, as_of=t(12), history_days=7)


def test_sum_check_flags_a_period_whose_intervals_miss_the_register_advance(
    store: IntervalStore,
) -> None:
    store.register_meters([MeterRegistration("M1", HOUR), MeterRegistration("M2", HOUR)])
    for meter in ("M1", "M2"):
        store.ingest_intervals(intervals(meter, ENDS, PROFILE))
    # M1's register advanced 50 Wh more than its intervals over 10 Jan: 50 > the
    # tolerance max(1, 0.005 * 5210) = 26.05 Wh. M2's advanced by exactly the intervals.
    store.ingest_registers(
        pa.table(
            {
                "meter": ["M1", "M1", "M2", "M2"],
                "obis": [A_PLUS] * 4,
                "read_at": [t(10), t(11), t(10), t(11)],
                "value": [1000.0, 1000.0 + DAY_SUM + 50, 1000.0, 1000.0 + DAY_SUM],
            },
            schema=REGISTER_SCHEMA,
        )
    )
    _vee(store)
    m1 = _validated(store, "M1", A_PLUS)
    m2 = _validated(store, "M2", A_PLUS)
    assert m1.num_rows == m2.num_rows == 24
    assert all(c & Check.SUM_CHECK for c in m1.column("checks").to_pylist())
    assert not any(c & Check.SUM_CHECK for c in m2.column("checks").to_pylist())
    # A review check: the actual values stay, quality A.
    assert m1.column("value").to_pylist() == PROFILE[FIRST : FIRST + 24].tolist()
    assert set(m1.column("quality").to_pylist()) == {Quality.ACTUAL.value}


def test_export_without_generation_is_reverse_flow(store: IntervalStore) -> None:
    store.register_meters(
        [MeterRegistration("M1", HOUR), MeterRegistration("PV", HOUR, has_generation=True)]
    )
    export = np.zeros(ENDS.size)
    export[FIRST + 12] = 5.0  # 5 Wh sent out over 10 Jan 12:00-13:00
    for meter in ("M1", "PV"):
        store.ingest_intervals(intervals(meter, ENDS, PROFILE))
        store.ingest_intervals(intervals(meter, ENDS, export, channel=A_MINUS))
    _vee(store)
    for channel in (A_PLUS, A_MINUS):
        m1 = _validated(store, "M1", channel).column("checks").to_pylist()
        pv = _validated(store, "PV", channel).column("checks").to_pylist()
        assert [i for i, c in enumerate(m1) if c & Check.REVERSE_FLOW] == [12]
        assert not any(c & Check.REVERSE_FLOW for c in pv)


def test_a_reading_off_its_interval_end_beyond_the_tolerance_is_substituted(
    store: IntervalStore,
) -> None:
    store.register_meters([MeterRegistration("M1", HOUR)])
    ends = ENDS.copy()
    ends[FIRST + 5] += 120  # 2 min late: beyond the 60 s tolerance
    ends[FIRST + 8] -= 30  # 30 s early: within it
    store.ingest_intervals(intervals("M1", ends, PROFILE))
    _vee(store)
    v = _validated(store, "M1", A_PLUS)
    checks = v.column("checks").to_pylist()
    assert [i for i, c in enumerate(checks) if c & Check.TIME_TOLERANCE] == [5]
    assert checks[8] & Check.TIME_TOLERANCE == 0
    assert v.column("quality").to_pylist()[5] == Quality.SUBSTITUTED.value
    assert v.column("method").to_pylist()[5] == Method.LINEAR_INTERPOLATION
    # Between 140 Wh (04:00-05:00) and 160 Wh (06:00-07:00): 150 Wh.
    assert v.column("value").to_pylist()[5] == pytest.approx(150.0)
    assert v.column("value").to_pylist()[8] == 180.0  # the early reading is kept as it is
    assert v.column("quality").to_pylist()[8] == Quality.ACTUAL.value


def test_register_reads_round_trip(store: IntervalStore) -> None:
    store.register_meters([MeterRegistration("M1", HOUR)])
    at = datetime(2024, 1, 10, tzinfo=UTC)
    store.ingest_registers(
        pa.table(
            {"meter": ["M1"], "obis": [A_PLUS], "read_at": [at], "value": [1234.0]},
            schema=REGISTER_SCHEMA,
        )
    )
    read = store.read_registers(t(9), t(11), ["M1"], [A_PLUS])
    assert read.column("value").to_pylist() == [1234.0]


def test_forward_and_final_substitutes_get_their_nem12_quality(store: IntervalStore) -> None:
    """E: after the meter's last actual (a forward estimate); F: a substitute older than
    the meter's load-profile capacity (the actual can never be read again); S otherwise."""
    store.register_meters(
        [
            MeterRegistration("LATE", HOUR),  # keeps 60 days of profile
            MeterRegistration("GONE", HOUR, profile_capacity_days=1),
            MeterRegistration("KEPT", HOUR),
        ]
    )
    keep = np.ones(ENDS.size, bool)
    keep[FIRST + 20 :] = False  # LATE: nothing after 10 Jan 20:00
    store.ingest_intervals(intervals("LATE", ENDS[keep], PROFILE[keep]))
    hole = np.ones(ENDS.size, bool)
    hole[FIRST + 5] = False  # one hour missing on 10 Jan 05:00-06:00
    for meter in ("GONE", "KEPT"):
        store.ingest_intervals(intervals(meter, ENDS[hole], PROFILE[hole]))
    _vee(store)  # as of 12 Jan 00:00: GONE's profile reaches back only to 11 Jan 00:00
    late = _validated(store, "LATE", A_PLUS)
    assert late.column("quality").to_pylist()[20:] == [Quality.ESTIMATED.value] * 4
    assert late.column("method").to_pylist()[20:] == [Method.LIKE_DAY] * 4
    # The like day of Wednesday 10 Jan is Wednesday 3 Jan: the same hours of the profile.
    assert late.column("value").to_pylist()[20:] == PROFILE[FIRST + 20 : FIRST + 24].tolist()
    assert set(late.column("quality").to_pylist()[:20]) == {Quality.ACTUAL.value}
    gone = _validated(store, "GONE", A_PLUS).column("quality").to_pylist()
    kept = _validated(store, "KEPT", A_PLUS).column("quality").to_pylist()
    assert gone[5] == Quality.FINAL_SUBSTITUTE.value
    assert kept[5] == Quality.SUBSTITUTED.value
    assert set(gone[:5] + gone[6:]) == set(kept[:5] + kept[6:]) == {Quality.ACTUAL.value}
