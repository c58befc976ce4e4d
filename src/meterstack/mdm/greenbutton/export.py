"""Green Button (NAESB ESPI) export: an Atom feed of one meter's intervals.

The feed holds one UsagePoint, and per channel a MeterReading, its ReadingType and one
IntervalBlock per UTC day, each IntervalReading with its ``timePeriod`` (start, duration
[s]), ``value`` and, for validated data, its ``ReadingQuality``. A value is an integer
count of ``10**powerOfTenMultiplier`` of the ``uom``; the exporter picks the largest
multiplier (0, -1, -2 or -3) at which every value of the channel is exact, and rounds at
-3 otherwise. Links follow the ESPI resource paths so that readers can tie entries
together (``related`` from UsagePoint to its MeterReadings, from a MeterReading to its
ReadingType and IntervalBlocks) [1]_.

References
----------
.. [1] NAESB REQ.21, Energy Services Provider Interface (ESPI), the Atom feed of
   UsagePoint, MeterReading, ReadingType and IntervalBlock resources.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import quote
from xml.etree import ElementTree as ET

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from meterstack.core.errors import InvalidInputError
from meterstack.core.time import ensure_utc
from meterstack.mdm.channels import BY_OBIS, ENERGY_CHANNELS, Channel
from meterstack.mdm.errors import UnknownMeterError
from meterstack.mdm.greenbutton.espi import ATOM, ESPI
from meterstack.mdm.intervals.base import IntervalStore
from meterstack.mdm.quality import Method, Quality, espi_quality

BASE = "/espi/1_1/resource"
_NAMESPACE = uuid.UUID("6f1b8c8e-7d0e-4a57-9d0a-3b1f1a0c5e11")


def power_of_ten(values: np.ndarray) -> int:
    """The largest multiplier in 0, -1, -2, -3 at which every value is an exact integer."""
    for k in (0, -1, -2, -3):
        scaled = values / 10.0**k
        if np.all(np.abs(scaled - np.rint(scaled)) <= 1e-9 * np.maximum(1.0, np.abs(scaled))):
            return k
    return -3


def _uid(*parts: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, '/'.join(parts))}"


def _sub(parent: ET.Element, tag: str, text: object | None = None, ns: str = ESPI) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ns}}}{tag}")
    if text is not None:
        element.text = str(text)
    return element


def _entry(
    feed: ET.Element, ident: str, title: str, links: list[tuple[str, str]], stamp: str
) -> ET.Element:
    entry = _sub(feed, "entry", ns=ATOM)
    _sub(entry, "id", ident, ATOM)
    for rel, href in links:
        link = _sub(entry, "link", ns=ATOM)
        link.set("rel", rel)
        link.set("href", href)
    _sub(entry, "title", title, ATOM)
    content = _sub(entry, "content", ns=ATOM)
    _sub(entry, "published", stamp, ATOM)
    _sub(entry, "updated", stamp, ATOM)
    return content


def export_greenbutton(
    store: IntervalStore,
    meter: str,
    start: datetime,
    end: datetime,
    *,
    updated: datetime,
    channels: Sequence[Channel] | None = None,
    source: Literal["validated", "raw"] = "validated",
) -> bytes:
    """The Green Button feed of ``meter``'s intervals ending in ``(start, end]``.

    ``source`` "validated" exports VEE's validated values (null intervals are left out);
    when the meter has none in the period the raw readings are exported instead.
    """
    start, end, updated = (
        ensure_utc(start, "start"),
        ensure_utc(end, "end"),
        ensure_utc(updated, "updated"),
    )
    regs = {r.meter: r for r in store.meters()}
    if meter not in regs:
        raise UnknownMeterError("meter", meter, "the store has no such meter")
    if end <= start:
        raise InvalidInputError("to", end.isoformat(), "must be after --from")
    wanted = [c.obis for c in (channels or list(BY_OBIS.values()))]
    table = store.read_validated(start, end, [meter], wanted) if source == "validated" else None
    validated = table is not None and table.num_rows > 0
    if not validated:
        table = store.read_intervals(start, end, [meter], wanted)
    assert table is not None
    stamp = updated.strftime("%Y-%m-%dT%H:%M:%SZ")
    ET.register_namespace("", ATOM)
    ET.register_namespace("espi", ESPI)
    feed = ET.Element(f"{{{ATOM}}}feed")
    _sub(
        feed,
        "id",
        _uid(meter, "feed", str(int(start.timestamp())), str(int(end.timestamp()))),
        ATOM,
    )
    _sub(feed, "title", f"meterstack Green Button export for {meter}", ATOM)
    _sub(feed, "updated", stamp, ATOM)
    up_href = f"{BASE}/UsagePoint/{quote(meter, safe='')}"
    link = _sub(feed, "link", ns=ATOM)
    link.set("rel", "self")
    link.set("href", up_href)
    present = [obis for obis in wanted if obis in set(table.column("channel").to_pylist())]
    service = BY_OBIS[present[0]].service if present else ENERGY_CHANNELS[0].service
    content = _entry(
        feed, _uid(meter, "UsagePoint"), meter,
        [("self", up_href), ("up", f"{BASE}/UsagePoint"), ("related", f"{up_href}/MeterReading")],
        stamp,
    )  # fmt: skip
    usage_point = _sub(content, "UsagePoint")
    category = _sub(usage_point, "ServiceCategory")
    _sub(category, "kind", int(service))
    interval_s = regs[meter].interval_s
    for index, obis in enumerate(present, start=1):
        channel = BY_OBIS[obis]
        rows = table.filter(pc.equal(table.column("channel"), obis))
        values = rows.column("value")
        keep = np.asarray(values.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        rows = rows.filter(pa.array(keep))
        value = rows.column("value").to_numpy()
        ends = rows.column("interval_end").cast(pa.int64()).to_numpy()
        if (
            "duration_s" in rows.column_names
            and rows.column("duration_s").null_count < rows.num_rows
        ):
            duration = rows.column("duration_s").fill_null(interval_s or 0).to_numpy()
        else:
            duration = np.full(ends.size, interval_s or 0, dtype=np.int64)
        if np.any(duration <= 0):
            raise InvalidInputError("meter", meter, "an interval has no known duration")
        k = power_of_ten(value) if value.size else 0
        mr_href = f"{up_href}/MeterReading/{index}"
        rt_href = f"{BASE}/ReadingType/{quote(meter, safe='')}-{index}"
        content = _entry(
            feed, _uid(meter, obis, "MeterReading"), f"{channel.name} ({channel.obis})",
            [("self", mr_href), ("up", f"{up_href}/MeterReading"),
             ("related", f"{mr_href}/IntervalBlock"), ("related", rt_href)],
            stamp,
        )  # fmt: skip
        _sub(content, "MeterReading")
        content = _entry(
            feed, _uid(meter, obis, "ReadingType"), f"{channel.name} in {channel.unit}",
            [("self", rt_href), ("up", f"{BASE}/ReadingType")], stamp,
        )  # fmt: skip
        reading_type = _sub(content, "ReadingType")
        _sub(reading_type, "accumulationBehaviour", channel.accumulation)
        _sub(reading_type, "commodity", channel.commodity)
        _sub(reading_type, "dataQualifier", channel.data_qualifier)
        _sub(reading_type, "flowDirection", int(channel.flow_direction))
        if interval_s:
            _sub(reading_type, "intervalLength", interval_s)
        _sub(reading_type, "kind", channel.kind)
        _sub(reading_type, "phase", 769 if channel.service == 0 else 0)
        _sub(reading_type, "powerOfTenMultiplier", k)
        _sub(reading_type, "timeAttribute", 0)
        _sub(reading_type, "uom", int(channel.uom))
        starts = ends - duration
        days = starts // 86400
        scaled = np.rint(value / 10.0**k).astype(np.int64)
        qualities = None
        if validated:
            qualities = [
                espi_quality(Quality(q), Method(int(m)), int(c))
                for q, m, c in zip(
                    rows.column("quality").to_pylist(),
                    rows.column("method").to_pylist(),
                    rows.column("checks").to_pylist(),
                    strict=True,
                )
            ]
        for day in np.unique(days).tolist():
            pick = np.flatnonzero(days == day)
            block_start = int(starts[pick].min())
            block_end = int(ends[pick].max())
            content = _entry(
                feed, _uid(meter, obis, "IntervalBlock", str(day)), "",
                [("self", f"{mr_href}/IntervalBlock/{day}"), ("up", f"{mr_href}/IntervalBlock")],
                stamp,
            )  # fmt: skip
            block = _sub(content, "IntervalBlock")
            interval = _sub(block, "interval")
            _sub(interval, "duration", block_end - block_start)
            _sub(interval, "start", block_start)
            for i in pick.tolist():
                reading = _sub(block, "IntervalReading")
                if qualities is not None:
                    _sub(_sub(reading, "ReadingQuality"), "quality", qualities[i])
                period = _sub(reading, "timePeriod")
                _sub(period, "duration", int(duration[i]))
                _sub(period, "start", int(starts[i]))
                _sub(reading, "value", int(scaled[i]))
    ET.indent(feed, space="  ")
    body: bytes = ET.tostring(feed, encoding="UTF-8", xml_declaration=True)
    return body


def now_utc() -> datetime:
    """The time stamped into a feed's ``updated`` by the CLI."""
    return datetime.now(UTC)
