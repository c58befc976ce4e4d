"""Aggregation over 150/180 cycles, 10 min and 2 h (IEC 61000-4-30 4.5)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from meterstack.metrology import aggregate, analyze, make_record
from meterstack.metrology.aggregation import (
    block_groups,
    mean_aggregate,
    rms_aggregate,
    ten_minute_groups,
    two_hour_groups,
)


def test_rms_of_groups_is_the_root_mean_square() -> None:
    values = np.array([[3.0, 4.0, 5.0, 12.0, 1.0]])
    segment = np.array([0, 0, 1, 1, 1])
    ends = np.arange(5.0)
    groups = block_groups(segment, ends, size=2)
    # blocks restart at the segment change; the incomplete last block is dropped
    assert groups.members.tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(rms_aggregate(values, groups), [[np.sqrt(12.5), np.sqrt(84.5)]])
    np.testing.assert_allclose(mean_aggregate(values, groups), [[3.5, 8.5]])
    assert groups.end_epoch.tolist() == [1.0, 3.0]


def test_ten_minute_and_two_hour_labels() -> None:
    starts = np.array([590.0, 599.9, 600.0, 7199.0, 7200.0])
    ten = ten_minute_groups(np.zeros(5, dtype=np.int64), starts)
    assert ten.end_epoch.tolist() == [600.0, 1200.0, 7200.0, 7800.0]
    two = two_hour_groups(ten.end_epoch)
    assert two.end_epoch.tolist() == [7200.0, 14400.0]
    assert two.sizes().tolist() == [3, 1]


def test_ten_minute_values_of_a_record_across_a_tick() -> None:
    fs = 2000.0
    start = datetime(2024, 5, 1, 11, 59, 58, tzinfo=UTC)
    t = np.arange(int(fs * 6)) / fs
    amplitude = np.where(t < 2.0, 200.0, 240.0)
    voltage = np.sqrt(2) * amplitude * np.sin(2 * np.pi * 50 * t)
    analysis = analyze(make_record(voltage, None, fs, 50, start), declared_voltage_v=230.0)
    ten = aggregate(analysis, "10-min")
    assert ten.end_epoch.tolist() == [
        datetime(2024, 5, 1, 12, 0, tzinfo=UTC).timestamp(),
        datetime(2024, 5, 1, 12, 10, tzinfo=UTC).timestamp(),
    ]
    assert ten.vrms[0, 1] == pytest.approx(240.0, rel=1e-4)
    two = aggregate(analysis, "2-h")
    assert two.end_epoch.tolist() == [ten.end_epoch[0], ten.end_epoch[0] + 7200.0]
