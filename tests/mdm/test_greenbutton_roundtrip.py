"""Green Button checked against the independent ``greenbutton-objects`` reader: the
shared files, imported then exported, read back the same as the originals; a validated
export carries the stored validated values and ESPI quality codes."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from greenbutton_objects import parse as gb_parse
from sqlalchemy import create_engine

from meterstack.mdm import import_greenbutton
from meterstack.mdm.greenbutton import export_greenbutton, parse_greenbutton
from meterstack.mdm.intervals import IntervalStore, MeterRegistration
from meterstack.mdm.operational import migrate
from meterstack.mdm.quality import Method
from meterstack.mdm.vee import run_vee
from tests.conftest import shared_data

from .conftest import intervals, t

A_PLUS = "1.0.1.8.0.255"
EVER = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC))


def _readings(path: Path) -> Counter[tuple[str, datetime, timedelta, float]]:
    """Every IntervalReading as greenbutton-objects reads it: (uom, start, duration, value
    with the powerOfTenMultiplier applied)."""
    out: Counter[tuple[str, datetime, timedelta, float]] = Counter()
    for point in gb_parse.parse_feed(str(path)):
        for reading in point.meterReadings:
            uom = reading.readingType.uom.name
            for item in reading.intervalReadings:
                period = item.timePeriod
                out[(uom, period.start, period.duration, round(item.value, 9))] += 1
    return out


@pytest.mark.parametrize(
    "name",
    [
        "Coastal_Multi_Family_Jan_1_2011_to_Jan_1_2012_RetailCustomer_5.xml",
        "TestGBDataHourlyNineDaysBinnedDaily.xml",
        "electric_containerized.xml",
        "gas_direct.xml",
    ],
)
def test_shared_files_survive_import_and_export(
    store: IntervalStore, tmp_path: Path, name: str
) -> None:
    source = shared_data("greenbutton", name)
    engine = create_engine(f"sqlite:///{tmp_path / 'op.db'}")
    migrate(engine)
    import_greenbutton(engine, store, source, create_meters=True)
    exported: Counter[tuple[str, datetime, timedelta, float]] = Counter()
    for index, point in enumerate(parse_greenbutton(source).usage_points):
        path = tmp_path / f"export-{index}.xml"
        path.write_bytes(export_greenbutton(store, point.meter, *EVER, updated=t(1), source="raw"))
        exported += _readings(path)
    original = _readings(source)
    assert sum(original.values()) > 0
    assert exported == original


def test_a_validated_export_carries_the_validated_values_and_their_quality(
    store: IntervalStore, tmp_path: Path
) -> None:
    store.register_meters([MeterRegistration("M1", 3600)])
    ends = int(t(1).timestamp()) + 3600 * np.arange(1, 24 * 10 + 1)
    values = 100.0 + 10.0 * (np.arange(ends.size) % 24)
    keep = np.ones(ends.size, bool)
    keep[24 * 9 + 5] = False  # one hour missing on 10 Jan: linear interpolation
    store.ingest_intervals(intervals("M1", ends[keep], values[keep]))
    run_vee(store, t(10), t(11), as_of=t(12), history_days=7)
    stored = store.read_validated(t(10), t(11), ["M1"], [A_PLUS])
    assert stored.num_rows == 24
    path = tmp_path / "validated.xml"
    path.write_bytes(export_greenbutton(store, "M1", t(10), t(11), updated=t(12)))
    (point,) = gb_parse.parse_feed(str(path))
    (reading,) = point.meterReadings
    assert reading.readingType.uom.name == "wattHours"
    assert reading.readingType.flowDirection.name == "forward"
    items = sorted(reading.intervalReadings, key=lambda r: r.timePeriod.start)
    assert [r.value for r in items] == pytest.approx(stored.column("value").to_pylist())
    assert [r.timePeriod.start + r.timePeriod.duration for r in items] == [
        e.as_py() for e in stored.column("interval_end")
    ]
    qualities = [{q.quality.name for q in r.readingQualities} for r in items]
    # NAESB REQ.21 QualityOfReading: 9 linear interpolation; 17 validated.
    assert stored.column("method").to_pylist()[5] == Method.LINEAR_INTERPOLATION
    assert qualities[5] == {"estimatedUsingLinearInterpolation"}
    assert all(q == {"validated"} for i, q in enumerate(qualities) if i != 5)
    # The interpolated hour, by hand: between 140 Wh and 160 Wh.
    assert items[5].value == pytest.approx(150.0)
