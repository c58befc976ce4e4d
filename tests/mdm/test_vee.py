"""VEE rules with known answers, on grids and through a store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from meterstack.mdm.errors import EstimationRefusedError
from meterstack.mdm.intervals import IntervalStore, MeterRegistration
from meterstack.mdm.operational import entries, migrate
from meterstack.mdm.quality import Check, Method
from meterstack.mdm.vee import (
    ChannelGrid,
    VeeConfig,
    edit_intervals,
    interpolate_gap,
    like_day_offsets,
    row_quantiles,
    run_vee,
    sum_check_failures,
    validate,
)
from meterstack.meter.profile import ProfileStatus

from .conftest import intervals, t

A = "1.0.1.8.0.255"


def grid(values: list[float], status: list[int] | None = None) -> ChannelGrid:
    v = np.array([values], dtype=float)
    s = np.array([status or [0] * len(values)], dtype=np.int64)
    return ChannelGrid(v, s, np.zeros(v.shape, bool))


def checks_of(values: list[float], window: int = 0, **config: float) -> np.ndarray:
    cfg = VeeConfig(min_history_intervals=4, **config)  # type: ignore[arg-type]
    return validate(grid(values), 3600, window, cfg)[0]


def test_gap_spike_high_and_low_limits() -> None:
    values = [10.0] * 10 + [np.nan, 10.0, 90.0, 10.0, -1.0]
    c = checks_of(values, window=10, high_factor=5.0)
    assert c[10] & Check.GAP
    assert c[12] & Check.SPIKE
    assert c[12] & Check.HIGH_LIMIT
    assert c[14] & Check.LOW_LIMIT  # below 0 x p01
    assert not c[11] & (Check.SPIKE | Check.HIGH_LIMIT)


def test_zero_and_flat_runs() -> None:
    c = checks_of([1.0, 0, 0, 0, 0, 2, 5, 5, 5, 5, 3], zero_run_s=4 * 3600, flat_run_s=4 * 3600)
    assert [bool(x & Check.ZERO_RUN) for x in c[:6]] == [False, True, True, True, True, False]
    assert [bool(x & Check.FLAT_LINE) for x in c[5:11]] == [False, True, True, True, True, False]


def test_meter_flags() -> None:
    st = [
        0,
        int(ProfileStatus.POWER_DOWN),
        int(ProfileStatus.CLOCK_ADJUSTED),
        int(ProfileStatus.TAMPER),
    ]
    c = validate(grid([1.0, 1, 1, 1], st), 3600, 0, VeeConfig())[0]
    assert c[1] & Check.POWER_FAILURE
    assert c[2] & Check.CLOCK_CHANGE
    assert c[3] & Check.TAMPER


def test_sum_check_against_register_delta() -> None:
    v = np.array([[1.0, 2, 3, 4, 5, 6]])
    # Reads at the ends of columns 0 and 3: delta must be 2+3+4 = 9; and 3 -> 5: 5+6 = 11.
    failed = sum_check_failures(
        v, np.array([0, 0, 0]), np.array([0, 3, 5]), np.array([100.0, 109.0, 125.0]), VeeConfig()
    )
    assert failed[0].tolist() == [False, False, False, False, True, True]


def test_interpolation_known_answer_and_refusal_across_outage() -> None:
    value = np.array([10.0, np.nan, np.nan, 40.0])
    checks = np.array([0, 1, 1, 0])
    assert interpolate_gap(value, checks, 1, 2).tolist() == [20.0, 30.0]
    with pytest.raises(EstimationRefusedError, match="outage"):
        interpolate_gap(value, np.array([int(Check.POWER_FAILURE), 1, 1, 0]), 1, 2)
    with pytest.raises(EstimationRefusedError, match="outage"):
        interpolate_gap(value, np.array([0, int(Check.OUTAGE | Check.GAP), 1, 0]), 1, 2)


def test_like_day_order() -> None:
    assert like_day_offsets(3, False, 1) == (7, 1, 2, 8, 9)  # Thursday
    assert like_day_offsets(0, False, 2) == (7, 14)  # Monday
    assert like_day_offsets(0, True, 2) == (1, 8)  # a Monday holiday: the Sundays before


def _load(store: IntervalStore, days: int = 36) -> np.ndarray:
    store.register_meters([MeterRegistration("M1", 3600)])
    ends = int(t(1).timestamp()) + 3600 * np.arange(1, 24 * days + 1)
    values = 100 + (np.arange(ends.size) % 24) * 10.0
    return ends, values


def test_vee_run_estimates_and_late_actual_replaces_estimate(store: IntervalStore) -> None:
    ends, values = _load(store)
    keep = np.ones(ends.size, bool)
    day = 24 * 34  # Sunday 4 Feb 2024
    keep[day + 5 : day + 7] = False  # 2 h: interpolation
    keep[day + 12 : day + 18] = False  # 6 h: like day (the Sunday before)
    store.ingest_intervals(intervals("M1", ends[keep], values[keep]))
    report = run_vee(
        store,
        t(1) + timedelta(days=33),
        t(1) + timedelta(days=35),
        as_of=t(1) + timedelta(days=36),
        history_days=30,
    )
    assert report.quality["S"] == 8
    v = store.read_validated(t(1) + timedelta(days=34), t(1) + timedelta(days=35), ["M1"], [A])
    method = v.column("method").to_pylist()
    value = v.column("value").to_pylist()
    assert method[5:7] == [Method.LINEAR_INTERPOLATION] * 2
    assert value[5:7] == pytest.approx([values[day + 4] + 10 * k for k in (1, 2)])
    assert method[12:18] == [Method.LIKE_DAY] * 6
    assert value[12:18] == values[day - 7 * 24 + 12 : day - 7 * 24 + 18].tolist()
    # The actual arrives late: the next run replaces the estimate and keeps it in history.
    store.ingest_intervals(intervals("M1", ends[day + 12 : day + 13], [555.0]))
    run_vee(
        store,
        t(1) + timedelta(days=33),
        t(1) + timedelta(days=35),
        as_of=t(1) + timedelta(days=36),
        history_days=30,
    )
    end = datetime.fromtimestamp(int(ends[day + 12]), UTC)
    history = store.validated_history("M1", A, end)
    assert [(h.quality.value, h.value) for h in history] == [
        ("S", values[day + 12 - 168]),
        ("A", 555.0),
    ]


def test_confirmed_outage_is_zero_not_interpolated(store: IntervalStore) -> None:
    import pyarrow as pa

    from meterstack.mdm.ingest import EVENT_SCHEMA

    ends, values = _load(store)
    keep = np.ones(ends.size, bool)
    day = 24 * 34
    keep[day + 2 : day + 6] = False  # 02:00-06:00 missing; outage 03:00-05:00
    store.ingest_intervals(intervals("M1", ends[keep], values[keep]))
    down = datetime.fromtimestamp(int(ends[day + 2]), UTC)
    up = datetime.fromtimestamp(int(ends[day + 4]), UTC)
    store.ingest_events(
        pa.table(
            {
                "meter": ["M1", "M1"],
                "log": ["pf", "pf"],
                "seq": [1, 2],
                "at": [down, up],
                "code": [1, 2],
                "detail": ["", ""],
            },
            schema=EVENT_SCHEMA,
        )
    )
    run_vee(
        store,
        t(1) + timedelta(days=34),
        t(1) + timedelta(days=35),
        as_of=t(1) + timedelta(days=36),
        history_days=30,
    )
    v = store.read_validated(t(1) + timedelta(days=34), t(1) + timedelta(days=35), ["M1"], [A])
    method = v.column("method").to_pylist()[2:6]
    quality = v.column("quality").to_pylist()[2:6]
    assert method[1:3] == [Method.ZERO_OUTAGE] * 2
    assert quality[1:3] == ["F", "F"]
    assert v.column("value").to_pylist()[3:5] == [0.0, 0.0]
    # The cells beside the outage are not interpolated from it: they come from the like day.
    assert method[0] == Method.LIKE_DAY
    assert method[3] == Method.LIKE_DAY


def test_edit_is_audited_and_kept_by_later_runs(store: IntervalStore, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ends, values = _load(store)
    store.ingest_intervals(intervals("M1", ends, values))
    window = (t(1) + timedelta(days=34), t(1) + timedelta(days=35))
    run_vee(store, *window, as_of=window[1], history_days=30)
    engine = create_engine(f"sqlite:///{tmp_path / 'op.db'}")
    migrate(engine)
    end = datetime.fromtimestamp(int(ends[24 * 34 + 3]), UTC)
    edit_intervals(store, engine, meter="M1", channel=A, interval_ends=[end], values=[42.0],
                   actor="alice", reason="customer reading", at=window[1])  # fmt: skip
    run_vee(store, *window, as_of=window[1], history_days=30)
    assert store.validated_history("M1", A, end)[-1].value == 42.0
    with Session(engine) as session:
        (entry,) = entries(session, "interval")
    assert entry.actor == "alice"
    assert entry.before["value"] == values[24 * 34 + 3]
    assert entry.after["value"] == 42.0


def test_the_report_counts_only_intervals_actually_validated(store: IntervalStore) -> None:
    """Meters x channels with no data are neither computed nor counted."""
    store.register_meters([MeterRegistration(m, 3600) for m in ("M1", "M2", "M3")])
    ends = int(t(1).timestamp()) + 3600 * np.arange(1, 24 * 10 + 1)
    values = 100 + (np.arange(ends.size) % 24) * 10.0
    keep = np.ones(ends.size, bool)
    keep[[24 * 9 + 5, 24 * 9 + 6]] = False  # M1: two intervals of the window missing
    store.ingest_intervals(intervals("M1", ends[keep], values[keep]))
    store.ingest_intervals(intervals("M2", ends, values))
    store.ingest_intervals(intervals("M2", ends, values / 10, channel="1.0.2.8.0.255"))
    report = run_vee(store, t(10), t(11), as_of=t(12), history_days=7)
    assert report.channels == 3  # M1 A+, M2 A+, M2 A-; nothing for M3 or the varh channels
    assert report.intervals == 3 * 24
    assert report.estimated == 2
    assert report.actual + report.estimated + report.null == report.intervals
    assert report.written.inserted == 3 * 24
    assert store.read_validated(t(10), t(11)).num_rows == 3 * 24
    assert report.compute_seconds > 0
    spent = report.read_seconds + report.compute_seconds + report.write_seconds
    assert spent <= report.seconds


@given(
    values=st.lists(
        st.lists(
            st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False)), min_size=1, max_size=30
        ),
        min_size=1,
        max_size=6,
    ).filter(lambda rows: len({len(r) for r in rows}) == 1),
    q=st.floats(0.0, 1.0),
)
def test_row_quantiles_agree_with_numpy(values: list[list[float | None]], q: float) -> None:
    """The vectorised history quantiles equal numpy.nanquantile row by row."""
    grid = np.array([[np.nan if v is None else v for v in row] for row in values])
    ours = row_quantiles(grid, (q,))[:, 0]
    for row, got in zip(grid, ours, strict=True):
        if np.isnan(row).all():
            assert np.isnan(got)
        else:
            assert got == pytest.approx(float(np.nanquantile(row, q)), rel=1e-12, abs=1e-9)
