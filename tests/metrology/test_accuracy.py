"""IEC 62053-21/22 tables."""

from __future__ import annotations

import pytest

from meterstack.core.errors import InvalidInputError
from meterstack.metrology.accuracy import (
    error_limit_pct,
    no_load_duration_s,
    starting_current_a,
    type_test_points,
)


def test_limits_by_current_and_power_factor() -> None:
    assert error_limit_pct("1", "direct", "1", 0.05) == 1.5
    assert error_limit_pct("1", "direct", "1", 0.1) == 1.0
    assert error_limit_pct("2", "direct", "0.5L", 0.15) == 2.5
    assert error_limit_pct("0.2S", "transformer", "0.8C", 0.05) == 0.5
    assert error_limit_pct("0.5S", "transformer", "0.5L", 1.0) == 0.6
    with pytest.raises(InvalidInputError, match="current_ratio"):
        error_limit_pct("1", "direct", "0.5L", 0.05)
    with pytest.raises(InvalidInputError, match="connection"):
        error_limit_pct("0.2S", "direct", "1", 1.0)


def test_starting_current_and_no_load_duration() -> None:
    assert starting_current_a("1", "direct", 5.0) == pytest.approx(0.02)
    assert starting_current_a("0.5S", "transformer", 5.0) == pytest.approx(0.005)
    # 600e6 / (1000 * 1 * 230 * 60) min for class 1
    assert no_load_duration_s("1", 1000, 1, 230.0, 60.0) == pytest.approx(
        600e6 / (1000 * 230 * 60) * 60
    )
    assert no_load_duration_s("0.2S", 1000, 3, 230.0, 6.0) == pytest.approx(
        900e6 / (1000 * 3 * 230 * 6) * 60
    )


def test_type_test_points() -> None:
    points = type_test_points("1", "direct", 5.0, 60.0)
    assert len(points) == 14
    assert points[0].name == "0.05Ib PF 1"
    assert points[0].limit_pct == 1.5
    assert points[3].name == "Imax PF 1"
    assert points[3].current_a == 60.0
    assert points[4].power_factor == "0.5L"
    assert points[4].phase_angle_rad > 0
    assert points[8].power_factor == "0.8C"
    assert points[8].phase_angle_rad < 0
    assert [p.kind for p in points[-2:]] == ["starting", "no_load"]
