"""Segment reductions and the compiled one-pass kernels against plain NumPy definitions."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from meterstack.tariff.errors import LoadDataError
from meterstack.tariff.plan import plan_rating
from meterstack.tariff.rating import blocks_of_runs, rate_with_plan
from meterstack.tariff.segments import (
    compiled_run_blocks,
    compiled_segment_pass,
    grouping,
    run_blocks,
    run_maxima,
    run_sums,
    segment_pass,
    segment_pass_8,
)
from meterstack.tariff.yaml_format import load_template

NUMBA = compiled_segment_pass() is not None
needs_numba = pytest.mark.skipif(not NUMBA, reason="numba is not installed")

labels_strategy = st.lists(st.integers(0, 3), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(labels_strategy, st.data())
def test_run_sums_and_maxima_match_a_loop(labels: list[int], data: st.DataObject) -> None:
    lab = np.array(labels)
    values = data.draw(
        hnp.arrays(
            np.float64,
            (3, lab.shape[0]),
            elements=st.floats(0, 1e6, allow_nan=False) | st.just(np.inf) | st.just(0.0),
        )
    )
    runs = grouping(lab, 4)
    spans = list(itertools.pairwise([*runs.starts.tolist(), lab.shape[0]]))
    expect_sum = np.array([[row[a:b].sum() for a, b in spans] for row in values])
    expect_max = np.array([[row[a:b].max() for a, b in spans] for row in values])
    with np.errstate(invalid="ignore"):
        assert np.allclose(run_sums(values, runs), expect_sum, rtol=1e-12, equal_nan=True)
    # the bit-pattern maximum of non-negative numbers is the maximum itself, bit for bit
    assert np.array_equal(run_maxima(values, runs, nonnegative=True), expect_max)
    assert np.array_equal(run_maxima(values, runs), expect_max)
    group_max = runs.maxima(values, nonnegative=True)
    for g in range(4):
        members = lab == g
        expect = values[:, members].max(axis=1) if members.any() else np.zeros(3)
        assert np.array_equal(group_max[:, g], expect)


def _segments(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 30))
    cuts = sorted(draw(st.sets(st.integers(1, n - 1), max_size=n - 1))) if n > 1 else []
    starts = np.array([0, *cuts, n], dtype=np.int64)
    s_n = starts.shape[0] - 1
    run = np.cumsum([0] + [draw(st.integers(0, 1)) for _ in range(s_n - 1)]).astype(np.int64)
    group = np.array([draw(st.integers(-1, 2)) for _ in range(s_n)], dtype=np.int64)
    return starts, run, group


@settings(max_examples=60, deadline=None)
@given(st.data(), st.sampled_from([1, 2, 3]))
def test_segment_pass_matches_numpy(data: st.DataObject, window: int) -> None:
    starts, run, group = _segments(data.draw)
    n = int(starts[-1])
    values = data.draw(hnp.arrays(np.float64, (2, n), elements=st.floats(0, 1e4, allow_nan=False)))
    r_n = int(run.max()) + 1
    sums, maxima = np.empty((2, r_n)), np.empty((2, 3))
    assert segment_pass(values, starts, run, group, window, sums, maxima) == -1
    expect_sums = np.zeros((2, r_n))
    expect_max = np.zeros((2, 3))
    for s in range(starts.shape[0] - 1):
        piece = values[:, starts[s] : starts[s + 1]]
        expect_sums[:, run[s]] += piece.sum(axis=1)
        if group[s] >= 0:
            if window == 1:
                peak = piece.max(axis=1)
            else:
                peak = piece.sum(axis=1) if piece.shape[1] == window else np.zeros(2)
            expect_max[:, group[s]] = np.maximum(expect_max[:, group[s]], peak)
    assert np.allclose(sums, expect_sums, rtol=1e-12)
    assert np.allclose(maxima, expect_max, rtol=1e-12)
    if NUMBA:
        kernel = compiled_segment_pass()
        assert kernel is not None
        sums2, maxima2 = np.empty_like(sums), np.empty_like(maxima)
        assert kernel(values, starts, run, group, window, sums2, maxima2) == -1
        assert np.array_equal(sums2, sums)
        assert np.array_equal(maxima2, maxima)


def test_segment_pass_reports_the_first_bad_meter() -> None:
    values = np.ones((4, 6))
    values[2, 3] = np.nan
    values[3, 1] = -1.0
    starts = np.array([0, 3, 6])
    run = np.array([0, 1])
    group = np.array([0, 0])
    out = np.empty((4, 2)), np.empty((4, 1))
    assert segment_pass(values, starts, run, group, 1, *out) == 2
    if NUMBA:
        kernel = compiled_segment_pass()
        assert kernel is not None
        assert kernel(values, starts, run, group, 1, *out) == 2


@settings(max_examples=40, deadline=None)
@given(st.data(), st.sampled_from([1, 2, 3]), st.integers(0, 19))
def test_eight_meter_pass_equals_the_plain_loop_bit_for_bit(
    data: st.DataObject, window: int, n_meters: int
) -> None:
    # 0 to 19 meters: no group of eight, one or two whole groups, and every remainder
    starts, run, group = _segments(data.draw)
    n = int(starts[-1])
    values = data.draw(
        hnp.arrays(
            np.float64,
            (n_meters, n),
            elements=st.floats(0, 1e4, allow_nan=False) | st.just(np.inf),
        )
    )
    r_n = int(run.max()) + 1
    expect = np.empty((n_meters, r_n)), np.empty((n_meters, 3))
    with np.errstate(invalid="ignore"):
        expect_bad = segment_pass(values, starts, run, group, window, *expect)
    got = np.full((n_meters, r_n), np.nan), np.full((n_meters, 3), np.nan)
    with np.errstate(invalid="ignore"):
        assert segment_pass_8(values, starts, run, group, window, *got) == expect_bad == -1
    # same additions in the same order: the same IEEE 754 numbers, not merely close ones
    assert np.array_equal(got[0], expect[0])
    assert np.array_equal(got[1], expect[1])
    if NUMBA:
        kernel = compiled_segment_pass()
        assert kernel is not None
        fast = np.full((n_meters, r_n), np.nan), np.full((n_meters, 3), np.nan)
        assert kernel(values, starts, run, group, window, *fast) == -1
        assert np.array_equal(fast[0], expect[0])
        assert np.array_equal(fast[1], expect[1])


@pytest.mark.parametrize(
    ("n_meters", "bad_cells", "first_bad"),
    [
        (8, [(5, 4, np.nan), (6, 0, -1.0)], 5),  # both in one whole group of eight
        (16, [(12, 9, -np.inf), (9, 11, -2.0)], 9),  # the lower meter is the later value
        (13, [(12, 2, -0.001)], 12),  # in the last, partial group
        (11, [(10, 0, np.nan), (3, 11, -5.0)], 3),  # first group beats the partial one
        (8, [(2, 7, np.nan)], 2),  # a NaN alone: its meter's sum is NaN
        (13, [(11, 3, np.nan)], 11),
        (9, [], -1),
    ],
)
def test_eight_meter_pass_reports_the_first_bad_meter(
    n_meters: int, bad_cells: list[tuple[int, int, float]], first_bad: int
) -> None:
    values = np.ones((n_meters, 12))
    for m, t, v in bad_cells:
        values[m, t] = v
    starts = np.array([0, 4, 8, 12])
    run = np.array([0, 1, 1])
    group = np.array([0, -1, 1])

    def outs() -> tuple[np.ndarray, np.ndarray]:
        return np.empty((n_meters, 2)), np.empty((n_meters, 2))

    assert segment_pass(values, starts, run, group, 1, *outs()) == first_bad
    assert segment_pass_8(values, starts, run, group, 1, *outs()) == first_bad
    if NUMBA:
        kernel = compiled_segment_pass()
        assert kernel is not None
        assert kernel(values, starts, run, group, 1, *outs()) == first_bad


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_run_blocks_loop_equals_the_array_formula(data: st.DataObject) -> None:
    k_n, p_n = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    labels = data.draw(st.lists(st.integers(0, p_n - 1), min_size=1, max_size=25))
    cycles = np.sort(
        data.draw(st.lists(st.integers(0, k_n - 1), min_size=len(labels), max_size=len(labels)))
    )
    per_interval = cycles * p_n + np.array(labels)
    runs = grouping(per_interval, k_n * p_n)
    sums = data.draw(
        hnp.arrays(np.float64, (3, runs.n_runs), elements=st.floats(0, 500, allow_nan=False))
    )
    limits = np.sort(
        data.draw(hnp.arrays(np.float64, (3, k_n, 2), elements=st.floats(1, 1000))), axis=2
    )
    limits = np.concatenate([limits, np.full((3, k_n, 1), np.inf)], axis=2)
    expect = blocks_of_runs(sums, runs, k_n, p_n, limits)
    loop = np.empty((3, k_n * p_n, 3))
    run_blocks(sums, runs.run_label // p_n, runs.run_label, limits, loop)
    assert np.allclose(loop.reshape(expect.shape), expect, rtol=1e-9, atol=1e-9)
    assert np.allclose(expect.sum(axis=3), runs.sums_of_runs(sums).reshape(3, k_n, p_n))
    if NUMBA:
        kernel = compiled_run_blocks()
        assert kernel is not None
        compiled = np.empty_like(loop)
        kernel(sums, runs.run_label // p_n, runs.run_label, limits, compiled)
        assert np.array_equal(compiled, loop)


@needs_numba
@pytest.mark.parametrize(
    "name",
    [
        "industrial-tou-demand",
        "commercial-demand-30min",
        "residential-tiered-5-block",
        "tou-seasonal-3-period",
        "hours-use-demand-blocks",
        "commercial-billing-cycle-15",
        "net-billing-hourly",
        "buy-all-sell-all",
        "commercial-demand-sliding",
        "industrial-kva-demand",
        "industrial-tou-demand-pf-ratio",
    ],
)
def test_compiled_and_numpy_paths_agree(name: str) -> None:
    tariff = load_template(name)
    ends = np.datetime64("2024-01-01T00:15") + np.arange(96 * 75) * np.timedelta64(15, "m")
    rng = np.random.default_rng(7)
    # 83 meters: ten groups of eight for the compiled pass, and three left over
    imp = rng.gamma(2.0, 0.3, (83, ends.shape[0])) * rng.uniform(0.2, 40, (83, 1))
    exp = rng.gamma(1.0, 0.2, (83, ends.shape[0]))
    kvarh = imp * rng.uniform(0.1, 0.8, (83, 1))
    plan = plan_rating(tariff, ends)
    fast = rate_with_plan(plan, imp, exp, kvarh, compiled=True)
    slow = rate_with_plan(plan, imp, exp, kvarh, compiled=False)
    fields = ("total", "energy", "demand", "pf", "energy_kwh", "demand_flat_kw", "demand_tou_kw")
    for field in fields:
        assert np.allclose(getattr(fast, field), getattr(slow, field), rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("compiled", [False, pytest.param(True, marks=needs_numba)])
def test_bad_value_named_with_its_meter_across_chunks(compiled: bool) -> None:
    tariff = load_template("commercial-demand-30min")
    ends = np.datetime64("2024-01-01T00:30") + np.arange(480) * np.timedelta64(30, "m")
    imp = np.ones((10, 480))
    imp[7, 123] = -0.5
    plan = plan_rating(tariff, ends)
    with pytest.raises(LoadDataError, match=r"import_kwh\[7, 123\]"):
        rate_with_plan(plan, imp, chunk_meters=3, compiled=compiled)
    imp[7, 123] = np.inf
    with pytest.raises(LoadDataError, match=r"import_kwh\[7, 123\]"):
        rate_with_plan(plan, imp, chunk_meters=3, compiled=compiled)


def test_no_meters_no_bills() -> None:
    plan = plan_rating(
        load_template("industrial-tou-demand"),
        np.datetime64("2024-01-01T00:15") + np.arange(96) * np.timedelta64(15, "m"),
    )
    result = rate_with_plan(plan, np.zeros((0, 96)))
    assert result.total.shape == (0, 1)


def test_threads_give_the_same_result() -> None:
    tariff = load_template("tou-3-period")
    ends = np.datetime64("2024-01-01T01:00") + np.arange(24 * 60) * np.timedelta64(1, "h")
    imp = np.random.default_rng(3).uniform(0, 2, (50, ends.shape[0]))
    plan = plan_rating(tariff, ends)
    one = rate_with_plan(plan, imp, chunk_meters=7)
    two = rate_with_plan(plan, imp, chunk_meters=7, threads=2)
    assert np.array_equal(one.total, two.total)


def test_array_blocks_for_many_meters_equal_the_loop() -> None:
    # 300 meters take the row-by-row running sum of blocks_of_runs (256 or more)
    rng = np.random.default_rng(11)
    k_n, p_n = 4, 2
    labels = np.repeat(np.arange(k_n), 12) * p_n + np.tile([0, 0, 1, 1, 0, 1], 2 * k_n)
    runs = grouping(labels, k_n * p_n)
    sums = rng.uniform(0, 40, (300, runs.n_runs))
    limits = np.concatenate(
        [np.sort(rng.uniform(10, 200, (300, k_n, 2)), axis=2), np.full((300, k_n, 1), np.inf)],
        axis=2,
    )
    expect = np.empty((300, k_n * p_n, 3))
    run_blocks(sums, runs.run_label // p_n, runs.run_label, limits, expect)
    got = blocks_of_runs(sums, runs, k_n, p_n, limits)
    assert np.allclose(got.reshape(expect.shape), expect, rtol=1e-12, atol=1e-9)
