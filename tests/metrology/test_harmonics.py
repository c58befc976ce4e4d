"""IEC 61000-4-7 grouping, checked against the standard's sums written out by hand."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from meterstack.core.errors import InvalidInputError
from meterstack.metrology import analyze, make_record
from meterstack.metrology.harmonics import (
    groups_from_row_parts,
    groups_from_segments,
    harmonic_groups,
    harmonic_subgroups,
    interharmonic_centred_subgroups,
    interharmonic_groups,
    row_parts_matrix,
    segment_offsets,
    thd_f,
    thd_r,
)
from tests.metrology.signals import tone


def by_hand(power: np.ndarray, cycles: int, order: int) -> dict[str, float]:
    """The four sums of IEC 61000-4-7, 5.5 and 5.6, one bin at a time."""
    n, half = cycles * order, cycles // 2
    group = 0.5 * power[n - half] + 0.5 * power[n + half]
    group += sum(power[n + i] for i in range(-half + 1, half))
    return {
        "group": np.sqrt(group),
        "subgroup": np.sqrt(power[n - 1] + power[n] + power[n + 1]),
        "inter": np.sqrt(sum(power[n + i] for i in range(1, cycles))),
        "centred": np.sqrt(sum(power[n + i] for i in range(2, cycles - 1))),
    }


@pytest.mark.parametrize("cycles", [10, 12])
def test_groupings_match_the_sums_of_the_standard(cycles: int) -> None:
    rng = np.random.default_rng(3)
    power = rng.random(cycles * 6)
    groups = harmonic_groups(power, cycles)
    subgroups = harmonic_subgroups(power, cycles)
    inter = interharmonic_groups(power, cycles)
    centred = interharmonic_centred_subgroups(power, cycles)
    for order in range(1, 5):
        expected = by_hand(power, cycles, order)
        assert groups[order - 1] == pytest.approx(expected["group"])
        assert subgroups[order - 1] == pytest.approx(expected["subgroup"])
        assert inter[order] == pytest.approx(expected["inter"])
        assert centred[order] == pytest.approx(expected["centred"])


def segments_of(power: np.ndarray, cycles: int) -> np.ndarray:
    rows = power.reshape(-1, cycles)
    offsets = [*segment_offsets(cycles).tolist(), cycles]
    return np.stack([rows[:, a:b].sum(axis=1) for a, b in itertools.pairwise(offsets)])


@settings(max_examples=40, deadline=None)
@given(
    power=arrays(np.float64, 120, elements=st.floats(0, 1e6)),
    cycles=st.sampled_from([10, 12]),
)
def test_fast_path_equals_the_bin_by_bin_functions(power: np.ndarray, cycles: int) -> None:
    groups, subgroups, inter, centred = groups_from_segments(segments_of(power, cycles))
    np.testing.assert_allclose(groups, harmonic_groups(power, cycles), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(subgroups, harmonic_subgroups(power, cycles), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(inter, interharmonic_groups(power, cycles), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(
        centred, interharmonic_centred_subgroups(power, cycles), rtol=1e-9, atol=1e-9
    )


@settings(max_examples=40, deadline=None)
@given(
    power=arrays(np.float64, (3, 120), elements=st.floats(0, 1e6)),
    cycles=st.sampled_from([10, 12]),
)
def test_row_parts_path_equals_the_bin_by_bin_functions(power: np.ndarray, cycles: int) -> None:
    """The spectral stage's path: each row's bins times one matrix, then the groupings."""
    rows = power.reshape(3, -1, cycles)
    parts = np.moveaxis(rows @ row_parts_matrix(cycles), -1, 0)  # (6, 3, rows)
    groups, subgroups, inter, centred = groups_from_row_parts(parts)
    np.testing.assert_allclose(groups, harmonic_groups(power, cycles), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(subgroups, harmonic_subgroups(power, cycles), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(inter, interharmonic_groups(power, cycles), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(
        centred, interharmonic_centred_subgroups(power, cycles), rtol=1e-9, atol=1e-9
    )


@pytest.mark.parametrize(
    ("function", "argument", "field"),
    [
        (groups_from_row_parts, np.ones((5, 4)), "parts"),
        (groups_from_segments, np.ones((4, 5)), "segments"),
        (row_parts_matrix, 9, "cycles"),
    ],
)
def test_bad_shapes_are_named(function: object, argument: object, field: str) -> None:
    assert callable(function)
    with pytest.raises(InvalidInputError, match=field):
        function(argument)


def test_thd_definitions() -> None:
    harmonics = np.array([100.0, 3.0, 4.0])
    assert thd_f(harmonics) == pytest.approx(5.0)
    assert thd_r(harmonics, np.sqrt(100**2 + 25)) == pytest.approx(5 / np.sqrt(10025) * 100)
    assert np.isnan(thd_f(np.array([0.0, 1.0])))


def test_bad_bin_count_is_named() -> None:
    with pytest.raises(InvalidInputError, match="bin_power"):
        harmonic_groups(np.ones(25), 10)


@pytest.mark.parametrize(("f0", "fs"), [(50, 8000.0), (60, 7680.0), (50, 12800.0)])
def test_pipeline_harmonics_and_interharmonics(f0: int, fs: float) -> None:
    """Harmonic 5 (4 %), harmonic 11 (2 %) and an interharmonic at 5.5 f0 (1 %)."""
    samples = int(fs * 1.0)
    voltage = tone([(1, 230.0, 0), (5, 9.2, 30), (11, 4.6, -60), (5.5, 2.3, 0)], fs, samples, f0)
    analysis = analyze(make_record(voltage, None, fs, f0))
    groups = analysis.harmonics_v[0].mean(axis=0)
    assert groups[0] == pytest.approx(230.0, rel=1e-6)
    assert groups[10] == pytest.approx(4.6, rel=1e-6)
    # the interharmonic tone lies half-way between 5 and 6: the edge bin of both groups
    assert groups[4] == pytest.approx(np.sqrt(9.2**2 + 0.5 * 2.3**2), rel=1e-6)
    assert analysis.subgroups_v[0, :, 4].mean() == pytest.approx(9.2, rel=1e-6)
    assert analysis.interharmonics_v[0, :, 5].mean() == pytest.approx(2.3, rel=1e-6)
    assert analysis.thd_f_v[0].mean() == pytest.approx(
        np.sqrt(9.2**2 + 0.5 * 2.3**2 + 0.5 * 2.3**2 + 4.6**2) / 230 * 100, rel=1e-6
    )
