"""The optimised VEE rules give bit-for-bit the answers of the straightforward ones.

:mod:`tests.mdm.vee_reference` holds the full-grid implementation (every rule on every
cell, history included); the code under test finds the few failing or missing cells
first and works on those. On random grids with gaps, zeros, flat lines, spikes, meter
status flags, outages, off-grid readings, reverse flow and sum-check failures, across a
daylight-saving change and public holidays, both must agree on every check bit, value,
quality flag and method.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pytest

from meterstack.mdm.vee import ChannelGrid, VeeConfig, estimate, local_calendar, validate
from meterstack.mdm.vee.estimation import like_day_sources
from meterstack.mdm.vee.run import _rows_of, build_grid
from meterstack.mdm.vee.runs import long_run_cells, run_spans
from meterstack.meter.profile import ProfileStatus

from . import vee_reference as ref

STATUS_BITS = [
    int(ProfileStatus.POWER_DOWN),
    int(ProfileStatus.CLOCK_ADJUSTED),
    int(ProfileStatus.TAMPER),
    int(ProfileStatus.DATA_NOT_VALID),
    int(ProfileStatus.CRITICAL_ERROR),
    int(ProfileStatus.CLOCK_INVALID),
]


def random_case(
    seed: int,
) -> tuple[ChannelGrid, int, int, VeeConfig, dict[str, np.ndarray], np.ndarray, str]:
    rng = np.random.default_rng(seed)
    interval_s = int(rng.choice([1800, 3600]))
    per_day = 86400 // interval_s
    m = int(rng.integers(1, 12))
    days = int(rng.integers(3, 40))
    t = days * per_day + int(rng.integers(0, per_day))
    value = np.round(rng.gamma(2.0, 100.0, (m, t)), int(rng.integers(-2, 1)))
    # Gaps of random lengths, including whole days and whole rows of history.
    for _ in range(int(rng.integers(0, 6 * m + 1))):
        row, col = int(rng.integers(m)), int(rng.integers(t))
        value[row, col : col + int(rng.choice([1, 2, 3, 5, 8, per_day + 3]))] = np.nan
    if rng.random() < 0.3:
        value[int(rng.integers(m)), : int(rng.integers(t))] = np.nan
    if rng.random() < 0.3:  # a meter that stopped sending: forward estimates
        value[int(rng.integers(m)), int(rng.integers(t)) :] = np.nan
    # Zero and flat runs.
    for _ in range(int(rng.integers(0, 4))):
        row, col = int(rng.integers(m)), int(rng.integers(t))
        value[row, col : col + int(rng.integers(1, 12))] = float(rng.choice([0.0, 77.0]))
    # Spikes.
    spikes = rng.random((m, t)) < 0.01
    value[spikes] *= 20
    status = np.zeros((m, t), dtype=np.int64)
    flagged = rng.random((m, t)) < 0.02
    status[flagged] = rng.choice(STATUS_BITS, size=int(flagged.sum()))
    status[rng.random((m, t)) < 0.003] |= int(ProfileStatus.TAMPER)
    time_fail = np.isnan(value) & (rng.random((m, t)) < 0.1)
    outage = np.zeros((m, t), dtype=bool)
    for _ in range(int(rng.integers(0, 3))):
        row, col = int(rng.integers(m)), int(rng.integers(t))
        outage[row, col : col + int(rng.integers(1, 10))] = True
    extra = {
        "reverse_flow": rng.random((m, t)) < 0.01,
        "sum_check": rng.random((m, t)) < 0.01,
        "outage": outage,
    }
    config = VeeConfig(
        zero_run_s=int(rng.choice([2, 4, 48])) * interval_s,
        flat_run_s=int(rng.choice([2, 3, 48])) * interval_s,
        min_history_intervals=int(rng.choice([1, 24, 48, 500])),
        low_factor=float(rng.choice([0.0, 0.5])),
        max_interpolation_s=int(rng.choice([2, 4])) * interval_s,
        like_day_weeks=int(rng.integers(1, 5)),
    )
    window_start = int(rng.integers(0, t))
    final_before = rng.integers(-5, t + 5, size=m).astype(np.int64)
    timezone = str(rng.choice(["UTC", "Europe/London", "Australia/Sydney"]))
    return (
        ChannelGrid(value, status, time_fail),
        interval_s,
        window_start,
        config,
        extra,
        final_before,
        timezone,
    )


SEEDS = range(120)


@pytest.mark.parametrize("seed", SEEDS)
def test_validate_and_estimate_equal_the_reference(seed: int) -> None:
    grid, interval_s, window_start, config, extra, final_before, timezone = random_case(seed)
    options = {} if seed % 4 == 0 else extra
    checks = validate(grid, interval_s, window_start, config, **options)
    expected_checks = ref.validate(grid, interval_s, window_start, config, **options)
    assert checks.dtype == expected_checks.dtype
    np.testing.assert_array_equal(checks, expected_checks)

    # Starts late in March (UTC): the grid crosses Europe's spring change (and, for the
    # longer grids, Sydney's autumn one in early April).
    t = grid.value.shape[1]
    start = int(datetime(2024, 3, 20, tzinfo=UTC).timestamp())
    ends = start + interval_s * np.arange(1, t + 1, dtype=np.int64)
    holidays = (date(2024, 3, 29), date(2024, 4, 1), date(2024, 4, 25))
    calendar = local_calendar(ends, interval_s, timezone, holidays)
    est = estimate(
        grid.value, checks, interval_s,
        calendar=calendar, config=config, final_before=final_before,
    )  # fmt: skip
    expected = ref.estimate(
        grid.value, checks, interval_s,
        calendar=calendar, config=config, final_before=final_before,
    )  # fmt: skip
    for name in ("value", "quality", "method"):
        ours, theirs = getattr(est, name), getattr(expected, name)
        assert ours.dtype == theirs.dtype, name
        np.testing.assert_array_equal(ours, theirs, err_msg=name)
    # The window alone: the history is read (anchors, like days, runs reaching back into
    # it) but not estimated.
    for first_col in {window_start, 1, t // 2}:
        window = estimate(
            grid.value, checks, interval_s,
            calendar=calendar, config=config, final_before=final_before, first_col=first_col,
        )  # fmt: skip
        for name in ("value", "quality", "method"):
            np.testing.assert_array_equal(
                getattr(window, name),
                getattr(expected, name)[:, first_col:],
                err_msg=f"{name} from column {first_col}",
            )

    anchor = ref.anchor_mask(grid.value, checks)
    todo = np.isnan(grid.value) & ~extra["outage"]
    np.testing.assert_array_equal(
        like_day_sources(anchor, todo, calendar, config.like_day_weeks),
        ref.like_day_sources(anchor, todo, calendar, config.like_day_weeks),
    )


@pytest.mark.parametrize("seed", range(30))
def test_run_helpers_equal_runs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    mask = rng.random((int(rng.integers(1, 6)), int(rng.integers(1, 40)))) < rng.random()
    length, first, _ = ref.runs(mask)
    row, start, size = run_spans(mask)
    rows, cols = np.nonzero((length > 0) & (np.arange(mask.shape[1]) == first))
    assert row.tolist() == rows.tolist()
    assert start.tolist() == cols.tolist()
    assert size.tolist() == length[rows, cols].tolist()
    for k in (1, 2, 3, 7):
        expected = np.flatnonzero(mask & (length >= k))
        assert long_run_cells(mask, k).tolist() == expected.tolist()


@pytest.mark.parametrize("seed", range(40))
def test_build_grid_equals_the_reference(seed: int) -> None:
    """Readings on and off the grid (some beyond the time tolerance, some two to a cell),
    with and without status words, from a channel selection or all rows."""
    rng = np.random.default_rng(seed)
    interval_s, m, t, grid_start = 900, int(rng.integers(1, 8)), int(rng.integers(1, 60)), 0
    n = int(rng.integers(1, 4 * m * t))
    shift = rng.choice([0, 0, 0, 30, -45, 61, -200], size=n) if seed % 3 else np.zeros(n, int)
    rows = {
        "interval_end": (interval_s * rng.integers(-1, t + 2, size=n) + shift).astype(np.int64),
        "value": np.round(rng.gamma(2.0, 10.0, size=n)),
        "status": np.where(rng.random(n) < 0.05 * (seed % 2), 4, 0).astype(np.int32),
        "received_at": rng.integers(0, 10**6, size=n).astype(np.int64),
    }
    select = rng.random(n) < 0.7 if seed % 4 == 1 else np.ones(n, dtype=bool)
    row_of = rng.integers(0, m, size=int(select.sum())).astype(np.int64)
    options = {"m": m, "t": t, "grid_start": grid_start, "interval_s": interval_s}
    grid, received = build_grid(rows, select, row_of, config=VeeConfig(), **options)
    expected, expected_received = ref.build_grid(
        rows, select, row_of, config=VeeConfig(), **options
    )
    np.testing.assert_array_equal(grid.value, expected.value)
    np.testing.assert_array_equal(grid.status, expected.status)
    np.testing.assert_array_equal(grid.time_fail, expected.time_fail)
    assert received is not None
    np.testing.assert_array_equal(received, expected_received)
    assert (
        build_grid(rows, select, row_of, config=VeeConfig(), with_received=False, **options)[1]
        is None
    )


@pytest.mark.parametrize("spread", [1, 3, 100, 10**9])
def test_rows_of_meter_ids_by_table_and_by_search(spread: int) -> None:
    rng = np.random.default_rng(spread)
    ids = rng.choice(np.arange(1, 500 * spread + 2, spread), size=300, replace=False)
    meter_id = rng.choice(ids, size=5000)
    order = np.argsort(ids)
    expected = order[np.searchsorted(ids[order], meter_id)]
    np.testing.assert_array_equal(_rows_of(ids.astype(np.int64), meter_id), expected)
