"""Meter serial numbers, and the error hierarchy every bad input goes through."""

from __future__ import annotations

import pickle

import pytest

from meterstack.core import (
    ClockError,
    CommandRefusedError,
    ConfigError,
    CorruptStateError,
    InvalidInputError,
    MeasurementError,
    MeterstackError,
    StoreError,
)
from meterstack.core.ids import validate_serial


@pytest.mark.parametrize("serial", ["M1", "LGZ-12345678", "a.b_c-d", "9" * 32])
def test_valid_serials_pass_unchanged(serial: str) -> None:
    assert validate_serial(serial) == serial


@pytest.mark.parametrize(
    "serial",
    ["", "-M1", ".hidden", "M 1", "M/1", "M+1", "a#b", "9" * 33, "zähler", 12345, None],
)
def test_bad_serials_name_the_field(serial: object) -> None:
    with pytest.raises(InvalidInputError) as caught:
        validate_serial(serial, field="meters[3].serial")  # type: ignore[arg-type]
    assert caught.value.field == "meters[3].serial"
    assert caught.value.value == serial
    assert str(caught.value).startswith("meters[3].serial=")


def test_the_hierarchy() -> None:
    for kind in (MeasurementError, ClockError):
        assert issubclass(kind, InvalidInputError)
    assert issubclass(InvalidInputError, ValueError)  # callers may catch ValueError too
    assert issubclass(CorruptStateError, StoreError)
    for base in (InvalidInputError, ConfigError, StoreError, CommandRefusedError):
        assert issubclass(base, MeterstackError)
    assert ConfigError.hint
    assert StoreError.hint


@pytest.mark.parametrize(
    "error",
    [
        MeasurementError("voltage_v[2]", -1.0, "a voltage is never negative"),
        ClockError("timestamp", "2024-01-01T00:00", "naive"),
        CommandRefusedError("manual_reconnect", "the relay is held by a remote disconnect"),
    ],
)
def test_errors_cross_process_boundaries_intact(error: MeterstackError) -> None:
    # Worker pools pickle errors; the named field must survive the trip.
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)
