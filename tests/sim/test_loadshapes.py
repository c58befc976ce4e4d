"""Tests of meterstack.sim.loadshapes: shapes, invariants, realism, errors.

Independent references used here: the solar elevation is computed from Cooper's declination
and the Woolf equation of time (not the Spencer series of the module); local time comes from
``zoneinfo`` one instant at a time; the reactive energy from the power-factor definition.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meterstack.core.errors import ClockError, ConfigError, InvalidInputError
from meterstack.sim import (
    ALLOWED_INTERVALS_S,
    CustomerClass,
    FleetMix,
    LoadShapes,
    generate_load_shapes,
)

ONLY_HOMES = FleetMix(1.0, 0.0, 0.0, 0.0, 0.0, 0.0)
ONLY_COMMERCIAL = FleetMix(0.0, 1.0, 0.0, 0.0, 0.0, 0.0)
ONLY_INDUSTRIAL = FleetMix(0.0, 0.0, 1.0, 0.0, 0.0, 0.0)
ALL_SOLAR = FleetMix(0.8, 0.15, 0.05, 1.0, 1.0, 1.0)
NO_SOLAR = FleetMix(0.8, 0.15, 0.05, 0.0, 0.0, 0.0)
ARRAYS = ("import_wh", "export_wh", "reactive_varh", "voltage_v")


def _epochs(shapes: LoadShapes) -> np.ndarray:
    return shapes.interval_end.astype(np.int64)


def _local(shapes: LoadShapes, tz_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Local hour (float) and weekday of each interval's midpoint, one zoneinfo call each."""
    tz = ZoneInfo(tz_name)
    hours, weekdays = [], []
    for end in _epochs(shapes):
        local = datetime.fromtimestamp(int(end) - shapes.interval_s // 2, tz)
        hours.append(local.hour + local.minute / 60.0)
        weekdays.append(local.weekday())
    return np.array(hours), np.array(weekdays)


def _sin_elevation(epoch_s: np.ndarray, latitude_deg: float, longitude_deg: float) -> np.ndarray:
    """Sine of the solar elevation from textbook formulas independent of the module's:
    declination of Cooper (1969), delta = 23.45 sin(360 (284 + n) / 365) deg, and the
    equation of time of Woolf as given by Duffie & Beckman, E = 9.87 sin 2B - 7.53 cos B
    - 1.5 sin B [min], B = 360 (n - 81) / 364 deg."""
    seconds = np.asarray(epoch_s, dtype=np.int64)
    dates = (seconds // 86400).astype("datetime64[D]")
    n = (dates - dates.astype("datetime64[Y]")).astype(np.int64) + 1
    declination = np.radians(23.45) * np.sin(np.radians(360.0 * (284 + n) / 365.0))
    b = np.radians(360.0 * (n - 81) / 364.0)
    eot_min = 9.87 * np.sin(2 * b) - 7.53 * np.cos(b) - 1.5 * np.sin(b)
    solar_h = (seconds % 86400) / 3600.0 + longitude_deg / 15.0 + eot_min / 60.0
    omega = np.radians(15.0 * (solar_h - 12.0))
    phi = np.radians(latitude_deg)
    return np.sin(phi) * np.sin(declination) + np.cos(phi) * np.cos(declination) * np.cos(omega)


def _elevation_range(
    shapes: LoadShapes, latitude_deg: float, longitude_deg: float
) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest elevation over start, midpoint and end of each interval. [deg]"""
    ends = _epochs(shapes)
    points = [ends - shapes.interval_s, ends - shapes.interval_s // 2, ends]
    elevations = np.degrees(
        np.arcsin(np.stack([_sin_elevation(p, latitude_deg, longitude_deg) for p in points]))
    )
    return elevations.min(axis=0), elevations.max(axis=0)


# ---------------------------------------------------------------- shapes, labels, determinism


def test_shapes_and_dtypes() -> None:
    shapes = generate_load_shapes(
        40, datetime(2024, 5, 1, tzinfo=UTC), 2, interval_s=900, mix=ALL_SOLAR
    )
    n, t = 40, 2 * 96
    assert (shapes.n_meters, shapes.n_intervals, shapes.interval_s) == (n, t, 900)
    assert shapes.interval_end.dtype == np.dtype("datetime64[s]")
    assert shapes.interval_end.shape == (t,)
    for name, dtype in (
        ("customer_class", np.int8),
        ("phases", np.int8),
        ("has_solar", np.bool_),
        ("solar_kwp", np.float32),
        ("power_factor", np.float32),
    ):
        array = getattr(shapes, name)
        assert array.dtype == dtype, name
        assert array.shape == (n,), name
    for name in ARRAYS:
        array = getattr(shapes, name)
        assert array.dtype == np.float32, name
        assert array.shape == (n, t), name
        assert np.isfinite(array).all(), name
    homes = shapes.customer_class == CustomerClass.RESIDENTIAL
    assert set(np.unique(shapes.customer_class)) <= {0, 1, 2}
    assert (shapes.phases[homes] == 1).all()
    assert (shapes.phases[~homes] == 3).all()
    assert ((shapes.power_factor >= 0.75) & (shapes.power_factor <= 0.99)).all()
    kwp_ranges = {0: (2.0, 8.0), 1: (20.0, 200.0), 2: (100.0, 1000.0)}
    assert shapes.has_solar.all()
    for klass, (low, high) in kwp_ranges.items():
        kwp = shapes.solar_kwp[shapes.customer_class == klass]
        assert ((kwp >= low) & (kwp <= high)).all()


def test_solar_kwp_is_zero_without_pv() -> None:
    shapes = generate_load_shapes(50, datetime(2024, 5, 1, tzinfo=UTC), 1)
    assert (shapes.solar_kwp[~shapes.has_solar] == 0).all()
    assert (shapes.solar_kwp[shapes.has_solar] > 0).all()


def test_counts_follow_the_mix() -> None:
    shapes = generate_load_shapes(20, datetime(2024, 5, 1, tzinfo=UTC), 1)
    classes = shapes.customer_class
    # 20 x (0.80, 0.15, 0.05) = (16, 3, 1); PV round(0.25 x 16, 0.30 x 3, 0.10 x 1) = (4, 1, 0)
    assert np.bincount(classes, minlength=3).tolist() == [16, 3, 1]
    assert np.bincount(classes[shapes.has_solar], minlength=3).tolist() == [4, 1, 0]


def test_interval_end_labels_are_utc_and_interval_ending() -> None:
    paris = ZoneInfo("Europe/Paris")
    start = datetime(2024, 3, 1, 1, 0, tzinfo=paris)  # 00:00 UTC
    shapes = generate_load_shapes(3, start, 2, interval_s=1800, timezone="Europe/Paris")
    assert shapes.interval_end[0] == np.datetime64("2024-03-01T00:30:00")
    assert shapes.interval_end[-1] == np.datetime64("2024-03-03T00:00:00")
    assert (np.diff(shapes.interval_end) == np.timedelta64(1800, "s")).all()
    first_end_utc = (start + timedelta(seconds=1800)).astimezone(UTC)
    assert int(_epochs(shapes)[0]) == int(first_end_utc.timestamp())


def test_same_seed_same_arrays_other_seed_other_arrays() -> None:
    kwargs = {"n_meters": 30, "start": datetime(2024, 6, 1, tzinfo=UTC), "days": 2}
    first = generate_load_shapes(**kwargs, seed=7)
    again = generate_load_shapes(**kwargs, seed=7)
    other = generate_load_shapes(**kwargs, seed=8)
    for name in (*ARRAYS, "customer_class", "has_solar", "solar_kwp", "power_factor"):
        assert np.array_equal(getattr(first, name), getattr(again, name)), name
    for name in ARRAYS:
        assert not np.array_equal(getattr(first, name), getattr(other, name)), name


def test_pv_shares_do_not_change_the_loads() -> None:
    kwargs = {"n_meters": 60, "start": datetime(2024, 6, 1, tzinfo=UTC), "days": 2, "seed": 3}
    without = generate_load_shapes(**kwargs, mix=NO_SOLAR)
    with_pv = generate_load_shapes(**kwargs, mix=FleetMix(solar_residential=0.5))
    assert np.array_equal(without.customer_class, with_pv.customer_class)
    same = ~with_pv.has_solar
    assert same.sum() > 20
    assert np.array_equal(without.import_wh[same], with_pv.import_wh[same])
    # The load (hence its reactive energy) is the same for every meter, PV or not.
    assert np.array_equal(without.reactive_varh, with_pv.reactive_varh)


# ---------------------------------------------------------------- net metering and PV


def test_import_export_exclusive_and_export_only_with_pv() -> None:
    shapes = generate_load_shapes(80, datetime(2024, 6, 10, tzinfo=UTC), 3)
    assert (shapes.import_wh >= 0).all()
    assert (shapes.export_wh >= 0).all()
    assert not ((shapes.import_wh > 0) & (shapes.export_wh > 0)).any()
    assert (shapes.export_wh[~shapes.has_solar] == 0).all()
    assert (shapes.export_wh[shapes.has_solar] > 0).any()


@pytest.mark.parametrize(
    ("tz_name", "latitude", "longitude", "start"),
    [
        ("UTC", 45.0, 0.0, datetime(2024, 6, 18, tzinfo=UTC)),
        # Standard offset +10 h: the fleet sits on 150 deg E; December is DST (+11 h).
        ("Australia/Sydney", -33.9, 150.0, datetime(2024, 12, 18, tzinfo=UTC)),
    ],
)
def test_export_only_while_the_sun_is_up(
    tz_name: str, latitude: float, longitude: float, start: datetime
) -> None:
    shapes = generate_load_shapes(
        60, start, 4, mix=ALL_SOLAR, timezone=tz_name, latitude_deg=latitude
    )
    _, highest = _elevation_range(shapes, latitude, longitude)
    # 1.5 deg covers the difference between Cooper's and Spencer's declination.
    dark = highest < -1.5
    assert dark.sum() > 0.3 * shapes.n_intervals
    assert (shapes.export_wh[:, dark] == 0).all()
    assert (shapes.export_wh[:, highest > 30.0] > 0).any()


def _pv_wh(**kwargs: object) -> tuple[LoadShapes, np.ndarray]:
    """PV energy per meter and interval: net without PV minus net with PV, same seed."""
    without = generate_load_shapes(**kwargs, mix=FleetMix(1.0, 0.0, 0.0, 0.0, 0.0, 0.0))
    with_pv = generate_load_shapes(**kwargs, mix=FleetMix(1.0, 0.0, 0.0, 1.0, 0.0, 0.0))
    net_without = without.import_wh.astype(np.float64) - without.export_wh
    net_with = with_pv.import_wh.astype(np.float64) - with_pv.export_wh
    return with_pv, net_without - net_with


def test_pv_is_zero_at_night_and_positive_in_daylight() -> None:
    shapes, pv = _pv_wh(
        n_meters=40, start=datetime(2024, 3, 18, tzinfo=UTC), days=3, interval_s=900
    )
    lowest, highest = _elevation_range(shapes, 45.0, 0.0)
    assert (pv[:, highest < -1.5] == 0).all()
    assert (pv[:, lowest > 5.0] > 0).all()


def test_pv_energy_scales_with_kwp() -> None:
    shapes, pv = _pv_wh(n_meters=120, start=datetime(2024, 6, 1, tzinfo=UTC), days=14)
    energy_kwh = pv.sum(axis=1) / 1000.0
    kwp = shapes.solar_kwp.astype(np.float64)
    assert np.corrcoef(energy_kwh, kwp)[0, 1] > 0.97
    specific = energy_kwh / kwp / 14.0  # [kWh/kWp/day]
    # Per-meter differences come only from the performance ratio (0.72..0.88) and noise.
    assert specific.max() / specific.min() < 0.88 / 0.72 * 1.05
    # A horizontal array at 45 deg N in June: PVGIS puts a good roof at 5-6 kWh/kWp/day;
    # horizontal, with clouds, 3-6.
    assert 3.0 < specific.mean() < 6.5


# ---------------------------------------------------------------- class signatures and energy


def test_residential_evening_peak_over_night() -> None:
    shapes = generate_load_shapes(
        300, datetime(2024, 1, 8, tzinfo=UTC), 14, mix=ONLY_HOMES, timezone="Europe/Berlin"
    )
    hour, weekday = _local(shapes, "Europe/Berlin")
    fleet = shapes.import_wh.mean(axis=0)
    weekdays = weekday < 5
    evening = max(fleet[weekdays & (np.floor(hour) == h)].mean() for h in range(17, 22))
    night = fleet[weekdays & (hour >= 3.0) & (hour < 5.0)].mean()
    assert evening > 2.0 * night
    morning = max(fleet[weekdays & (np.floor(hour) == h)].mean() for h in range(6, 9))
    assert morning > 1.5 * night
    # Weekends rise later: 07:00-08:00 is busier on weekdays than on Sundays.
    seven = np.floor(hour) == 7
    assert fleet[weekdays & seven].mean() > fleet[(weekday == 6) & seven].mean()


def test_commercial_weekday_plateau_over_sunday() -> None:
    shapes = generate_load_shapes(
        200, datetime(2024, 4, 1, tzinfo=UTC), 14, mix=ONLY_COMMERCIAL, timezone="Europe/Paris"
    )
    hour, weekday = _local(shapes, "Europe/Paris")
    fleet = shapes.import_wh.mean(axis=0)
    business = fleet[(weekday < 5) & (hour >= 10.0) & (hour < 16.0)].mean()
    assert business > 3.0 * fleet[weekday == 6].mean()
    assert business > 2.5 * fleet[(weekday < 5) & (hour < 5.0)].mean()


def test_industrial_base_load_is_high() -> None:
    kwargs = {"start": datetime(2024, 4, 1, tzinfo=UTC), "days": 14, "seed": 2}
    plants = generate_load_shapes(100, **kwargs, mix=ONLY_INDUSTRIAL)
    homes = generate_load_shapes(100, **kwargs, mix=ONLY_HOMES)

    def base_over_peak(shapes: LoadShapes) -> float:
        energy = shapes.import_wh
        low = np.percentile(energy, 5, axis=1)
        high = np.percentile(energy, 95, axis=1)
        return float(np.median(low / high))

    assert base_over_peak(plants) > 0.3
    assert base_over_peak(homes) < 0.25


@pytest.mark.parametrize(
    ("mix", "fleet_mean", "typical"),
    [
        (ONLY_HOMES, (8.0, 15.0), (3.0, 30.0)),
        (ONLY_COMMERCIAL, (100.0, 400.0), (50.0, 800.0)),
        (ONLY_INDUSTRIAL, (2000.0, 10000.0), (1000.0, 20000.0)),
    ],
)
def test_mean_daily_energy_in_documented_range(
    mix: FleetMix, fleet_mean: tuple[float, float], typical: tuple[float, float]
) -> None:
    shapes = generate_load_shapes(
        300, datetime(2023, 4, 3, tzinfo=UTC), 14, mix=mix, timezone="Europe/Paris", seed=5
    )
    daily_kwh = shapes.import_wh.sum(axis=1) / 1000.0 / 14.0
    assert fleet_mean[0] < daily_kwh.mean() < fleet_mean[1]
    in_range = (daily_kwh >= typical[0]) & (daily_kwh <= typical[1])
    assert in_range.mean() >= 0.85


@pytest.mark.parametrize(("latitude", "heavier"), [(45.0, 1), (-45.0, 7)])
def test_heating_season_follows_the_hemisphere(latitude: float, heavier: int) -> None:
    energy = {}
    for month in (1, 7):
        shapes = generate_load_shapes(
            150, datetime(2023, month, 1, tzinfo=UTC), 31, mix=ONLY_HOMES, latitude_deg=latitude
        )
        energy[month] = float(shapes.import_wh.sum())
    lighter = 8 - heavier
    assert energy[heavier] > 1.05 * energy[lighter]


# ---------------------------------------------------------------- reactive energy and voltage


def test_reactive_energy_follows_the_load_power_factor() -> None:
    kwargs = {"n_meters": 60, "start": datetime(2024, 6, 1, tzinfo=UTC), "days": 2}
    plain = generate_load_shapes(**kwargs, mix=NO_SOLAR)
    solar = generate_load_shapes(**kwargs, mix=ALL_SOLAR)
    pf = plain.power_factor.astype(np.float64)[:, None]
    # Without PV the import is the load: Q = P tan(acos(PF)), lagging, so positive.
    expected = plain.import_wh * np.tan(np.arccos(pf))
    assert np.allclose(plain.reactive_varh, expected, rtol=1e-5)
    assert (plain.reactive_varh > 0).all()
    # PV inverters run at unity PF: the reactive energy is the load's, exporting or not.
    assert np.array_equal(solar.reactive_varh, plain.reactive_varh)
    assert (solar.reactive_varh[solar.export_wh > 0] > 0).all()


def test_voltage_is_plausible() -> None:
    shapes = generate_load_shapes(200, datetime(2024, 6, 1, tzinfo=UTC), 7, nominal_voltage_v=230)
    voltage = shapes.voltage_v
    assert ((voltage >= 195.4) & (voltage <= 264.6)).all()
    # EN 50160: +-10 % for 95 % of the 10-min means of a week.
    assert ((voltage >= 207.0) & (voltage <= 253.0)).mean() > 0.99
    # Each meter's mean sits somewhere else on its feeder.
    assert voltage.mean(axis=1).std() > 1.0
    us = generate_load_shapes(5, datetime(2024, 6, 1, tzinfo=UTC), 1, nominal_voltage_v=120)
    assert abs(float(us.voltage_v.mean()) - 120.0) < 0.06 * 120.0


def test_voltage_drops_with_import_and_rises_with_export() -> None:
    shapes = generate_load_shapes(300, datetime(2024, 6, 1, tzinfo=UTC), 7, mix=ALL_SOLAR)
    homes = shapes.customer_class == CustomerClass.RESIDENTIAL
    net = (shapes.import_wh - shapes.export_wh)[homes]
    deviation = shapes.voltage_v[homes] - shapes.voltage_v[homes].mean(axis=1, keepdims=True)
    slopes = [np.polyfit(n, d, 1)[0] for n, d in zip(net[:50], deviation[:50], strict=True)]
    assert np.median(slopes) < 0.0


# ---------------------------------------------------------------- daylight saving time


def test_business_hours_keep_local_time_across_dst() -> None:
    shapes = generate_load_shapes(
        300,
        datetime(2024, 3, 25, tzinfo=UTC),
        10,
        mix=ONLY_COMMERCIAL,
        timezone="Europe/London",
        seed=4,
    )
    fleet = shapes.import_wh.mean(axis=0)
    ends = shapes.interval_end

    def day(iso: str) -> np.ndarray:
        start = np.datetime64(f"{iso}T00:00:00")
        pick = (ends > start) & (ends <= start + np.timedelta64(1, "D"))
        return fleet[pick] / fleet[pick].max()

    before, after = day("2024-03-28"), day("2024-04-02")  # Thursday GMT, Tuesday BST
    errors = {lag: np.abs(np.roll(before, lag) - after)[4:-4].mean() for lag in range(-4, 5)}
    assert min(errors, key=errors.__getitem__) == -2  # one hour earlier in UTC


@pytest.mark.parametrize(
    ("plain_sunday", "dst_sunday", "lag"),
    [
        ("2024-03-24", "2024-03-31", -2),  # spring forward: 23-hour day, events 1 h earlier UTC
        ("2024-10-20", "2024-10-27", 2),  # fall back: 25-hour day, events 1 h later UTC
    ],
)
def test_dst_day_keeps_local_hours(plain_sunday: str, dst_sunday: str, lag: int) -> None:
    """On the day the clocks change, homes still wake and cook by the (new) local time."""
    start = datetime.fromisoformat(plain_sunday).replace(tzinfo=UTC) - timedelta(days=1)
    shapes = generate_load_shapes(600, start, 9, mix=ONLY_HOMES, timezone="Europe/London", seed=6)
    fleet = shapes.import_wh.mean(axis=0)
    ends = shapes.interval_end

    def utc_day(iso: str) -> np.ndarray:
        day_start = np.datetime64(f"{iso}T00:00:00")
        pick = (ends > day_start) & (ends <= day_start + np.timedelta64(1, "D"))
        return fleet[pick] / fleet[pick].mean()

    plain, dst = utc_day(plain_sunday), utc_day(dst_sunday)
    awake = slice(6, 44)  # intervals ending 03:30 .. 22:00 UTC, after the change
    errors = {k: np.abs(np.roll(plain, k)[awake] - dst[awake]).mean() for k in range(-4, 5)}
    assert min(errors, key=errors.__getitem__) == lag


# ---------------------------------------------------------------- bad inputs

START = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("overrides", "error", "field"),
    [
        ({"n_meters": 0}, InvalidInputError, "n_meters"),
        ({"n_meters": 2.5}, InvalidInputError, "n_meters"),
        ({"n_meters": True}, InvalidInputError, "n_meters"),
        ({"days": 0}, InvalidInputError, "days"),
        ({"days": "7"}, InvalidInputError, "days"),
        ({"interval_s": 600}, InvalidInputError, "interval_s"),
        ({"interval_s": 1800.5}, InvalidInputError, "interval_s"),
        ({"start": datetime(2024, 1, 1)}, ClockError, "start"),  # naive
        ({"start": "2024-01-01"}, ClockError, "start"),
        ({"start": datetime(2024, 1, 1, 0, 0, 0, 500, tzinfo=UTC)}, ClockError, "start"),
        ({"latitude_deg": 90.5}, InvalidInputError, "latitude_deg"),
        ({"latitude_deg": -91.0}, InvalidInputError, "latitude_deg"),
        ({"latitude_deg": math.nan}, InvalidInputError, "latitude_deg"),
        ({"seed": -1}, InvalidInputError, "seed"),
        ({"nominal_voltage_v": 0.0}, InvalidInputError, "nominal_voltage_v"),
        ({"mix": {"residential": 1.0}}, InvalidInputError, "mix"),
        ({"timezone": 5}, InvalidInputError, "timezone"),
    ],
)
def test_bad_input_names_the_field(overrides: dict[str, object], error: type, field: str) -> None:
    kwargs: dict[str, object] = {"n_meters": 2, "start": START, "days": 1, **overrides}
    with pytest.raises(error) as caught:
        generate_load_shapes(**kwargs)
    assert caught.value.field == field
    assert caught.value.value is overrides[field] or caught.value.value == overrides[field]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"residential": 0.7}, "mix"),  # sums to 0.9
        ({"residential": 0.9, "commercial": 0.15}, "mix"),  # 1.1
        ({"residential": 0.85, "commercial": -0.05, "industrial": 0.2}, "mix.commercial"),
        ({"industrial": math.inf}, "mix.industrial"),
        ({"solar_residential": 1.5}, "mix.solar_residential"),
        ({"solar_industrial": -0.1}, "mix.solar_industrial"),
        ({"solar_commercial": "lots"}, "mix.solar_commercial"),
    ],
)
def test_bad_mix_names_the_share(fields: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        generate_load_shapes(2, START, 1, mix=FleetMix(**fields))
    assert caught.value.field == field


def test_unknown_timezone_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="Mars/Olympus_Mons"):
        generate_load_shapes(2, START, 1, timezone="Mars/Olympus_Mons")


def test_nothing_is_computed_for_bad_input() -> None:
    with pytest.raises(InvalidInputError):
        generate_load_shapes(10**9, START, 10**6, interval_s=1)


# ---------------------------------------------------------------- invariants

ZONES = ["UTC", "Europe/London", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]


@st.composite
def mixes(draw: st.DrawFn) -> FleetMix:
    weights = [draw(st.floats(0.0, 1.0)) for _ in range(3)]
    if sum(weights) == 0.0:
        weights[0] = 1.0
    total = math.fsum(weights)
    shares = [w / total for w in weights]
    solar = [draw(st.floats(0.0, 1.0)) for _ in range(3)]
    return FleetMix(*shares, *solar)


@st.composite
def requests(draw: st.DrawFn) -> dict[str, object]:
    """Arguments of a small simulation anywhere, any time of the year."""
    minute = draw(st.integers(0, 365 * 24 * 60))
    return {
        "n_meters": draw(st.integers(1, 8)),
        "start": datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=minute),
        "days": draw(st.integers(1, 2)),
        "interval_s": draw(st.sampled_from(ALLOWED_INTERVALS_S)),
        "seed": draw(st.integers(0, 2**63)),
        "mix": draw(mixes()),
        "timezone": draw(st.sampled_from(ZONES)),
        "latitude_deg": draw(st.floats(-89.0, 89.0)),
    }


@settings(max_examples=30, deadline=None)
@given(request=requests())
def test_invariants_hold_for_any_small_fleet(request: dict[str, object]) -> None:
    shapes = generate_load_shapes(**request)
    n_meters = request["n_meters"]
    t = int(request["days"]) * 86400 // int(request["interval_s"])
    for name in ARRAYS:
        array = getattr(shapes, name)
        assert array.shape == (n_meters, t)
        assert array.dtype == np.float32
        assert np.isfinite(array).all()
    assert (shapes.import_wh >= 0).all()
    assert (shapes.export_wh >= 0).all()
    assert not ((shapes.import_wh > 0) & (shapes.export_wh > 0)).any()
    assert (shapes.export_wh[~shapes.has_solar] == 0).all()
    assert (shapes.reactive_varh >= 0).all()
    assert ((shapes.voltage_v >= 195.4) & (shapes.voltage_v <= 264.6)).all()
    pf = shapes.power_factor.astype(np.float64)[~shapes.has_solar, None]
    expected = shapes.import_wh[~shapes.has_solar] * np.tan(np.arccos(pf))
    assert np.allclose(shapes.reactive_varh[~shapes.has_solar], expected, rtol=1e-5)
