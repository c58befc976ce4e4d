"""The quarterly accuracy check: 2 kW for one hour against a reference meter."""

from datetime import timedelta

import pytest

from meterstack.core import InvalidInputError
from meterstack.meter import Meter, check_accuracy, percentage_error, run_resistive_load_test

from .support import START, config


def test_percentage_error_definition() -> None:
    assert percentage_error(2030.0, 2000.0) == pytest.approx(1.5)
    assert percentage_error(1990.0, 2000.0) == pytest.approx(-0.5)
    with pytest.raises(InvalidInputError):
        percentage_error(1.0, 0.0)


@pytest.mark.parametrize(
    ("accuracy_class", "meter_wh", "passed"),
    [
        ("2", 2039.0, True),
        ("2", 2041.0, False),
        ("1", 2019.0, True),
        ("1", 2021.0, False),
        ("0.5S", 1990.0, True),
        ("0.5S", 1989.0, False),
        ("0.2S", 2004.0, True),
        ("0.2S", 2004.2, False),
    ],
)
def test_class_limits(accuracy_class: str, meter_wh: float, passed: bool) -> None:
    assert check_accuracy(meter_wh, 2000.0, accuracy_class).passed is passed


@pytest.mark.parametrize(
    ("calibration_error_pct", "accuracy_class", "passed"),
    [
        (0.0, "0.2S", True),
        (1.5, "2", True),
        (1.5, "1", False),
        (2.5, "2", False),
        (-0.4, "0.5S", True),
    ],
)
def test_resistive_load_through_the_meter(
    calibration_error_pct: float, accuracy_class: str, passed: bool
) -> None:
    meter = Meter(
        config(calibration_error_pct=calibration_error_pct, accuracy_class=accuracy_class),
        commissioned_at=START,
    )
    result = run_resistive_load_test(meter, START)
    assert result.reference_wh == pytest.approx(2000.0)
    # The pulse count resolves 1 Wh at 1000 imp/kWh.
    assert result.error_pct == pytest.approx(calibration_error_pct, abs=0.051)
    assert result.passed is passed


def test_against_a_reference_meter_reading() -> None:
    meter = Meter(config(accuracy_class="2", phases=3), commissioned_at=START)
    result = run_resistive_load_test(meter, START, reference_wh=1980.0, duration=timedelta(hours=1))
    assert result.error_pct == pytest.approx((2000 - 1980) / 1980 * 100, abs=0.06)
    assert result.passed
