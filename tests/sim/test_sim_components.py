"""Tests of the load-shape model's building blocks against independent references."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meterstack.sim import _appliances, _demand, _fleet, _noise, _solar
from meterstack.sim._localtime import OffsetTable, local_time_features


def _epoch(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())  # type: ignore[misc]


# ---------------------------------------------------------------- local time


@pytest.mark.parametrize(
    ("tz_name", "day"),
    [
        ("Europe/London", datetime(2024, 3, 31, tzinfo=UTC)),
        ("Europe/London", datetime(2024, 10, 27, tzinfo=UTC)),
        ("America/New_York", datetime(2024, 11, 3, tzinfo=UTC)),
        ("Australia/Sydney", datetime(2024, 4, 6, tzinfo=UTC)),
        ("Australia/Lord_Howe", datetime(2024, 10, 5, tzinfo=UTC)),  # 30-min DST
        ("Asia/Kolkata", datetime(2024, 12, 31, tzinfo=UTC)),  # +05:30, year end
    ],
)
def test_local_time_features_match_zoneinfo(tz_name: str, day: datetime) -> None:
    tz = ZoneInfo(tz_name)
    epochs = int(day.timestamp()) + np.arange(-86400, 2 * 86400, 450, dtype=np.int64)
    offsets = OffsetTable.build(tz, float(epochs[0]), float(epochs[-1]))
    features = local_time_features(epochs, offsets)
    for k, epoch in enumerate(epochs):
        local = datetime.fromtimestamp(int(epoch), tz)
        hour = local.hour + local.minute / 60 + local.second / 3600
        assert features.hour[k] == pytest.approx(hour, abs=1e-4)
        assert features.weekday[k] == local.weekday()
        assert features.day_of_year[k] == local.timetuple().tm_yday


def test_offset_changes_are_located_to_the_second() -> None:
    tz = ZoneInfo("Europe/London")
    offsets = OffsetTable.build(tz, _epoch(2024, 3, 1), _epoch(2024, 11, 30))
    # EU rule: the clocks change at 01:00 UTC on the last Sundays of March and October.
    assert offsets.change_epoch_s.tolist() == [_epoch(2024, 3, 31, 1), _epoch(2024, 10, 27, 1)]
    assert offsets.offset_s.tolist() == [0, 3600, 0]
    assert offsets.standard_offset_at(np.array([_epoch(2024, 7, 1)])).tolist() == [0]


def test_wall_to_epoch_inverts_local_time() -> None:
    tz = ZoneInfo("America/New_York")
    offsets = OffsetTable.build(tz, _epoch(2024, 3, 1), _epoch(2024, 11, 30))
    walls = [datetime(2024, 3, 9, 23, 30), datetime(2024, 3, 10, 4), datetime(2024, 7, 4, 12)]
    local_s = np.array([int((w - datetime(1970, 1, 1)).total_seconds()) for w in walls])
    expected = [int(w.replace(tzinfo=tz).timestamp()) for w in walls]
    assert offsets.wall_to_epoch(local_s).tolist() == expected


# ---------------------------------------------------------------- sun


@pytest.mark.parametrize(
    ("instant", "declination_deg"),
    [
        # Solstices and equinox of 2024 (US Naval Observatory, Earth's seasons table).
        (datetime(2024, 6, 20, 20, 51, tzinfo=UTC), 23.44),
        (datetime(2024, 12, 21, 9, 20, tzinfo=UTC), -23.44),
        (datetime(2024, 3, 20, 3, 6, tzinfo=UTC), 0.0),
        (datetime(2024, 9, 22, 12, 44, tzinfo=UTC), 0.0),
    ],
)
def test_declination_at_solstices_and_equinoxes(instant: datetime, declination_deg: float) -> None:
    gamma = _solar.fractional_year(np.array([int(instant.timestamp())]))
    # Spencer's series was fitted to one year; over the leap-year cycle it is within about
    # 0.6 deg of the ephemeris, worst near the equinoxes where the declination moves fastest.
    assert np.degrees(_solar.declination_spencer(gamma))[0] == pytest.approx(
        declination_deg, abs=0.6
    )


@pytest.mark.parametrize(
    ("day", "minutes"),
    [
        # Extremes of the equation of time (apparent minus mean solar time).
        (datetime(2024, 11, 3, 12, tzinfo=UTC), 16.4),
        (datetime(2024, 2, 11, 12, tzinfo=UTC), -14.2),
        (datetime(2024, 7, 26, 12, tzinfo=UTC), -6.5),
        (datetime(2024, 5, 14, 12, tzinfo=UTC), 3.7),
    ],
)
def test_equation_of_time_extremes(day: datetime, minutes: float) -> None:
    gamma = _solar.fractional_year(np.array([int(day.timestamp())]))
    assert _solar.equation_of_time_spencer(gamma)[0] == pytest.approx(minutes, abs=0.6)


def test_sun_is_highest_at_local_solar_noon() -> None:
    # Greenwich, 2024-11-03: solar noon is 16.4 min before 12:00 UTC.
    epochs = _epoch(2024, 11, 3) + np.arange(0, 86400, 60, dtype=np.int64)
    cos_z = _solar.cos_zenith(epochs, 51.48, 0.0)
    noon = datetime.fromtimestamp(int(epochs[np.argmax(cos_z)]), UTC)
    assert abs(noon - datetime(2024, 11, 3, 11, 43, 36, tzinfo=UTC)) <= timedelta(minutes=1)
    # Noon elevation = 90 - latitude + declination (declination about -15.0 deg that day).
    assert np.degrees(np.arcsin(cos_z.max())) == pytest.approx(90 - 51.48 - 15.0, abs=0.3)


def test_haurwitz_clear_sky() -> None:
    cos_z = np.array([1.0, 0.5, 0.0, -0.3])
    ghi = _solar.clear_sky_ghi_haurwitz(cos_z)
    assert ghi[0] == pytest.approx(1098.0 * np.exp(-0.059))
    assert ghi[1] == pytest.approx(549.0 * np.exp(-0.118))
    assert ghi[2:].tolist() == [0.0, 0.0]


def test_day_length() -> None:
    delta = np.radians(np.array([23.44, 0.0, -23.44]))
    assert _solar.day_length_h(delta, 0.0) == pytest.approx([12.0, 12.0, 12.0])
    # 45 N at the June solstice: 15 h 25 min from sunrise to sunset (geometric).
    assert _solar.day_length_h(delta, 45.0)[0] == pytest.approx(15.0 + 25.0 / 60.0, abs=0.05)
    assert _solar.day_length_h(delta, 80.0).tolist() == [24.0, 12.0, 0.0]


def test_interval_mean_irradiance_only_while_the_sun_is_up() -> None:
    ends = _epoch(2024, 6, 21) + 3600 * np.arange(1, 25, dtype=np.int64)
    ghi = _solar.interval_mean_clear_sky_ghi(ends, 3600, 45.0, 0.0)
    # Sunrise about 04:20 UTC and sunset about 19:45 UTC at 45 N 0 E on the solstice.
    assert ghi[:4].tolist() == [0.0] * 4
    assert ghi[4] > 0.0
    assert ghi[19] > 0.0
    assert ghi[20:].tolist() == [0.0] * 4
    assert np.argmax(ghi) in (11, 12)  # the hours ending 12:00 and 13:00


# ---------------------------------------------------------------- sessions


def test_sessions_split_exactly_over_intervals() -> None:
    first_end = _epoch(2024, 1, 1, 0, 30)
    energy = np.zeros((2, 4), dtype=np.float32)
    sessions = _appliances.Sessions(
        row=np.array([0, 1, 1]),
        # 00:20 for 50 min; 23:50 the day before for 20 min; 01:30 sharp for 30 min.
        start_s=np.array([first_end - 600, first_end - 2400, first_end + 3600]),
        duration_s=np.array([3000.0, 1200.0, 1800.0]),
        power_kw=np.array([3.0, 6.0, 2.0]),
    )
    _appliances.add_sessions(energy, sessions, first_end, 1800)
    assert energy[0].tolist() == [500.0, 1500.0, 500.0, 0.0]
    # 10 of its 20 minutes fall before the first interval and are cut.
    assert energy[1].tolist() == [1000.0, 0.0, 0.0, 1000.0]


# ---------------------------------------------------------------- noise and fleet


def test_smoothed_noise_variance_and_correlation() -> None:
    rng = np.random.default_rng(1)
    series = _noise.smoothed_noise(rng, 200_000, 4.0)
    assert series.std() == pytest.approx(1.0, abs=0.02)
    lag_one = np.corrcoef(series[:-1], series[1:])[0, 1]
    assert lag_one == pytest.approx(np.exp(-1.0 / 4.0), abs=0.02)


def test_ar1_series_variance_and_correlation() -> None:
    series = _noise.ar1_series(np.random.default_rng(2), 100_000, 0.75)
    assert series.std() == pytest.approx(1.0, abs=0.03)
    assert np.corrcoef(series[:-1], series[1:])[0, 1] == pytest.approx(0.75, abs=0.02)


@pytest.mark.parametrize(
    ("n", "shares", "counts"),
    [
        (20, (0.8, 0.15, 0.05), [16, 3, 1]),
        (10, (0.8, 0.15, 0.05), [8, 2, 0]),  # 8, 1.5, 0.5: the tie goes to the first
        (1, (0.8, 0.15, 0.05), [1, 0, 0]),
        (3, (1 / 3, 1 / 3, 1 / 3), [1, 1, 1]),
    ],
)
def test_class_counts_largest_remainder(
    n: int, shares: tuple[float, float, float], counts: list[int]
) -> None:
    assert _fleet.class_counts(n, shares) == counts


@settings(max_examples=50, deadline=None)
@given(
    n=st.integers(1, 10_000),
    weights=st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0.01, 1)),
)
def test_class_counts_add_up_and_stay_within_one(
    n: int, weights: tuple[float, float, float]
) -> None:
    total = sum(weights)
    shares = (weights[0] / total, weights[1] / total, weights[2] / total)
    counts = _fleet.class_counts(n, shares)
    assert sum(counts) == n
    for count, share in zip(counts, shares, strict=True):
        assert abs(count - n * share) < 1.0


# ---------------------------------------------------------------- demand shapes


def _reference_week(step_min: int) -> _demand.ShapeClock:
    """A fine grid over Monday..Sunday, lighting gain 1."""
    minutes = np.arange(0, 7 * 1440, step_min) + step_min / 2
    return _demand.ShapeClock(
        hour=((minutes % 1440) / 60.0).astype(np.float32),
        weekday=(minutes // 1440).astype(np.int8),
        evening_gain=np.ones(minutes.shape[0], dtype=np.float32),
    )


@pytest.mark.parametrize(
    "params",
    [_demand.ResidentialParams, _demand.CommercialParams, _demand.IndustrialParams],
)
def test_shapes_have_unit_mean_over_a_week(params: type) -> None:
    """The closed-form normalisation equals numerical integration over a 1-min grid."""
    drawn = params.draw(np.random.default_rng(3), 200)
    shape = drawn.shape(_reference_week(1))
    assert (shape > 0).all()
    assert shape.mean(axis=1) == pytest.approx(np.ones(200), abs=2e-3)
