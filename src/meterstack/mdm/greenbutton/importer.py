"""Green Button (NAESB ESPI) import: Atom feeds of UsagePoints and their interval data.

Both feed styles are read: the default namespace (``<feed xmlns="...Atom">`` with
``<UsagePoint xmlns="http://naesb.org/espi">``) and prefixed (``atom:`` / ``ns:``), since
the parser resolves namespaces rather than prefixes. Entries are tied together by their
links, as ESPI lays them out: a UsagePoint's ``related`` links name its MeterReadings
(by their ``self`` or ``up`` link); a MeterReading's ``related`` links name its
ReadingType and IntervalBlocks. Several IntervalBlocks may share one entry.

Each IntervalReading becomes one interval of the stored channel its ReadingType maps to
(:func:`meterstack.mdm.channels.channel_for_espi`), labelled by its end
``start + duration``, with its value scaled to the channel's unit:
``value * 10**powerOfTenMultiplier * factor(uom)``. A reading that cannot be taken (no
ReadingType, an unknown uom, a start that is not whole seconds, a missing value) is
rejected with its place and reason; the others are kept. A file that is not well-formed
XML or not an Atom feed is refused whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from xml.etree.ElementTree import Element

import pyarrow as pa
from defusedxml import ElementTree as SafeET

from meterstack.mdm.channels import ServiceKind, channel_for_espi
from meterstack.mdm.errors import FileFormatError, UnitError
from meterstack.mdm.greenbutton.espi import atom, espi
from meterstack.mdm.ingest import INTERVAL_SCHEMA

#: The batch an import produces: the ingest schema plus each interval's duration [s].
GREENBUTTON_SCHEMA = INTERVAL_SCHEMA.append(pa.field("duration_s", pa.int64(), nullable=False))


@dataclass
class _Resource:
    self_href: str
    up_href: str | None
    related: list[str]
    title: str
    element: Element


@dataclass
class UsagePointData:
    """One UsagePoint of a feed and what was read for it."""

    href: str
    title: str
    service: ServiceKind | None
    meter: str
    interval_s: set[int] = field(default_factory=set)


@dataclass
class ParsedFeed:
    """What a Green Button file holds, ready to ingest."""

    usage_points: list[UsagePointData]
    batch: pa.Table
    rejected: list[tuple[str, str]]
    places: list[str] = field(default_factory=list)  # each batch row's IntervalReading


def _text(element: Element | None, tag: str) -> str | None:
    if element is None:
        return None
    child = element.find(espi(tag))
    if child is None or child.text is None or not child.text.strip():
        return None
    return child.text.strip()


def _resources(root: Element, kind: str) -> list[_Resource]:
    out = []
    for entry in root.iter(atom("entry")):
        content = entry.find(atom("content"))
        if content is None:
            continue
        links = entry.findall(atom("link"))
        self_href = next((ln.get("href", "") for ln in links if ln.get("rel") == "self"), "")
        up_href = next((ln.get("href") for ln in links if ln.get("rel") == "up"), None)
        related = [ln.get("href", "") for ln in links if ln.get("rel") == "related"]
        title_el = entry.find(atom("title"))
        title = (title_el.text or "").strip() if title_el is not None else ""
        for element in content.findall(espi(kind)):
            out.append(_Resource(self_href, up_href, related, title, element))
    return out


def _parent_of(parent: _Resource, child: _Resource) -> bool:
    return child.self_href in parent.related or (
        child.up_href is not None and child.up_href in parent.related
    )


def meter_id_for(href: str) -> str:
    """A meter id for a UsagePoint without one given: the tail of its ``self`` link."""
    tail = href.split("/resource/", 1)[-1].strip("/")
    return tail[-64:] if tail else "greenbutton"


def _int(text: str | None, place: str, name: str) -> int:
    if text is None:
        raise ValueError(f"{place}: {name} is missing")
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"{place}: {name}={text!r} is not a number") from None
    if number != int(number):
        raise ValueError(f"{place}: {name}={text!r} is not a whole number of seconds")
    return int(number)


def parse_greenbutton(source: Path | bytes, meter: str | None = None) -> ParsedFeed:
    """Read a Green Button feed into an interval batch (:data:`GREENBUTTON_SCHEMA`).

    ``meter`` names the meter for the feed's UsagePoint (a feed with several UsagePoints
    needs their own ids: the tail of each one's ``self`` link).

    Raises
    ------
    FileFormatError
        The file is not well-formed XML, or not an Atom feed, or holds no UsagePoint.
    """
    where = str(source) if isinstance(source, Path) else "<bytes>"
    try:
        root = SafeET.fromstring(source.read_bytes() if isinstance(source, Path) else source)
    except OSError as exc:
        raise FileFormatError("file", where, f"cannot be read: {exc}") from exc
    except Exception as exc:  # defusedxml and expat raise several kinds
        raise FileFormatError("file", where, f"is not well-formed XML: {exc}") from exc
    if root.tag != atom("feed"):
        raise FileFormatError("file", where, f"the root element is {root.tag}, not an Atom feed")
    points = _resources(root, "UsagePoint")
    if not points:
        raise FileFormatError("file", where, "holds no UsagePoint")
    if meter is not None and len(points) > 1:
        raise FileFormatError("meter", meter, f"{where} has {len(points)} UsagePoints; name none")
    readings = _resources(root, "MeterReading")
    reading_types = _resources(root, "ReadingType")
    blocks = _resources(root, "IntervalBlock")
    usage: list[UsagePointData] = []
    for point in points:
        kind_text = _text(point.element.find(espi("ServiceCategory")), "kind")
        try:
            service = ServiceKind(int(kind_text)) if kind_text is not None else None
        except ValueError:
            service = None
        usage.append(
            UsagePointData(
                point.self_href, point.title, service, meter or meter_id_for(point.self_href)
            )
        )
    columns: dict[str, list[object]] = {name: [] for name in GREENBUTTON_SCHEMA.names}
    rejected: list[tuple[str, str]] = []
    places: list[str] = []
    for block in blocks:
        owner = next((mr for mr in readings if _parent_of(mr, block)), None)
        if owner is None and len(readings) == 1:
            owner = readings[0]
        point_index = None
        if owner is not None:
            point_index = next((i for i, p in enumerate(points) if _parent_of(p, owner)), None)
            if point_index is None and len(points) == 1:
                point_index = 0
        reading_type = None
        if owner is not None:
            reading_type = next((rt for rt in reading_types if rt.self_href in owner.related), None)
        items = block.element.findall(espi("IntervalReading"))
        place = block.self_href or "IntervalBlock"
        if owner is None or point_index is None:
            rejected.extend(
                (f"{place}/IntervalReading[{i}]", "belongs to no MeterReading of a UsagePoint")
                for i in range(len(items))
            )
            continue
        if reading_type is None:
            rejected.extend(
                (f"{place}/IntervalReading[{i}]", "its MeterReading has no ReadingType")
                for i in range(len(items))
            )
            continue
        rt = reading_type.element
        uom_text = _text(rt, "uom")
        try:
            if uom_text is None:
                raise UnitError(f"{reading_type.self_href}.uom", None, "the ReadingType has no uom")
            flow_text = _text(rt, "flowDirection")
            channel, factor = channel_for_espi(
                usage[point_index].service,
                int(uom_text),
                int(flow_text) if flow_text else None,
                reading_type.self_href,
            )
            multiplier = int(_text(rt, "powerOfTenMultiplier") or 0)
        except (UnitError, ValueError) as exc:
            rejected.extend((f"{place}/IntervalReading[{i}]", str(exc)) for i in range(len(items)))
            continue
        scale = factor * 10.0**multiplier
        for i, item in enumerate(items):
            here = f"{place}/IntervalReading[{i}]"
            period = item.find(espi("timePeriod"))
            try:
                start = _int(_text(period, "start"), here, "start")
                duration = _int(_text(period, "duration"), here, "duration")
                raw = _text(item, "value")
                if raw is None:
                    raise ValueError(f"{here}: value is missing")
                value = int(raw)
            except ValueError as exc:
                rejected.append((here, str(exc)))
                continue
            if duration <= 0:
                rejected.append((here, f"duration={duration} is not positive"))
                continue
            columns["meter"].append(usage[point_index].meter)
            columns["channel"].append(channel.obis)
            columns["interval_end"].append(start + duration)
            columns["value"].append(value * scale)
            columns["status"].append(0)
            columns["duration_s"].append(duration)
            places.append(here)
            usage[point_index].interval_s.add(duration)
    batch = pa.table(
        {
            "meter": pa.array(columns["meter"], pa.string()),
            "channel": pa.array(columns["channel"], pa.string()),
            "interval_end": pa.array(columns["interval_end"], pa.int64()).cast(
                pa.timestamp("s", tz="UTC")
            ),
            "value": pa.array(columns["value"], pa.float64()),
            "status": pa.array(columns["status"], pa.int32()),
            "duration_s": pa.array(columns["duration_s"], pa.int64()),
        },
        schema=GREENBUTTON_SCHEMA,
    )
    return ParsedFeed(usage, batch, rejected, places)
