"""Bad measurements raise a typed error that names the field and leave the meter unchanged."""

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from meterstack.core import ClockError, MeasurementError
from meterstack.meter import Meter

from .support import START, config, load, prepaid


def _meter() -> Meter:
    meter = Meter(config(phases=3, prepaid=prepaid()), commissioned_at=START)
    meter.step(load(START + timedelta(minutes=30), 3000.0, phases=3))
    return meter


@pytest.mark.parametrize(
    ("field", "index", "value", "named"),
    [
        ("voltage_v", 1, float("nan"), "voltage_v[1]"),
        ("current_a", 2, float("inf"), "current_a[2]"),
        ("active_power_w", 0, float("nan"), "active_power_w[0]"),
        ("reactive_power_var", 2, float("-inf"), "reactive_power_var[2]"),
        ("voltage_v", 0, -230.0, "voltage_v[0]"),
        ("current_a", 1, -1.0, "current_a[1]"),
    ],
)
def test_bad_phase_value(field: str, index: int, value: float, named: str) -> None:
    meter = _meter()
    before = meter.image()
    good = load(START + timedelta(hours=1), 3000.0, phases=3)
    values = list(getattr(good, field))
    values[index] = value
    with pytest.raises(MeasurementError) as caught:
        meter.step(replace(good, **{field: tuple(values)}))
    assert caught.value.field == named
    assert caught.value.value != caught.value.value or caught.value.value == value  # NaN-safe
    assert meter.image() == before


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"frequency_hz": float("nan")}, "frequency_hz"),
        ({"frequency_hz": -50.0}, "frequency_hz"),
        ({"neutral_current_a": float("nan")}, "neutral_current_a"),
        ({"voltage_v": (230.0, 230.0)}, "voltage_v"),
        ({"active_power_w": [1000.0, 1000.0, 1000.0]}, "active_power_w"),
    ],
)
def test_bad_scalar_or_shape(changes: dict[str, object], named: str) -> None:
    meter = _meter()
    before = meter.image()
    with pytest.raises(MeasurementError) as caught:
        meter.step(replace(load(START + timedelta(hours=1), 3000.0, phases=3), **changes))
    assert caught.value.field == named
    assert meter.image() == before


def test_time_going_backwards_is_refused() -> None:
    meter = _meter()
    before = meter.image()
    earlier = load(START + timedelta(minutes=10), 3000.0, phases=3)
    with pytest.raises(ClockError) as caught:
        meter.step(earlier)
    assert caught.value.field == "timestamp"
    assert "already seen" in caught.value.reason
    assert meter.image() == before


def test_naive_timestamp_is_refused() -> None:
    meter = _meter()
    before = meter.image()
    with pytest.raises(ClockError) as caught:
        meter.step(load(datetime(2024, 1, 1, 2), 3000.0, phases=3))
    assert caught.value.field == "timestamp"
    assert meter.image() == before


def test_command_in_the_past_is_refused() -> None:
    meter = _meter()
    before = meter.image()
    with pytest.raises(ClockError) as caught:
        meter.remote_disconnect(START)
    assert caught.value.field == "at"
    assert meter.image() == before
