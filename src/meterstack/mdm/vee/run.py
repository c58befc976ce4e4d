"""A VEE run: read raw intervals from a store, validate, estimate, write validated ones.

Meters are processed in groups of the same interval length and time zone. Each channel of
a group becomes one meters x intervals grid (history columns first, then the window) that
holds only the meters with data on that channel: a channel a meter does not record is
neither computed nor counted. Manual edits are kept unless an actual arrived after the
edit; an actual that arrives late replaces an estimate at the next run, and the estimate
is kept in the validated history.

The report separates the time spent reading the store, computing (grids, validation,
estimation: numpy only) and writing, and counts only the intervals actually written:
actuals that passed or failed review checks, estimates and nulls.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from meterstack.core.errors import InvalidInputError
from meterstack.core.time import LocalDays, ensure_utc, zone
from meterstack.mdm.channels import A_MINUS, A_PLUS, ENERGY_CHANNELS, Channel
from meterstack.mdm.intervals.base import (
    IntervalStore,
    MeterRegistration,
    ValidatedColumns,
    ValidatedWrite,
)
from meterstack.mdm.quality import Check, Method, Quality
from meterstack.mdm.vee.estimation import Estimates, LocalCalendar, estimate
from meterstack.mdm.vee.validation import ChannelGrid, VeeConfig, sum_check_failures, validate
from meterstack.meter.events import EventCode

I64 = npt.NDArray[np.int64]
BOOL2 = npt.NDArray[np.bool_]
GROUP_SIZE = 2000
_ESTIMATED = (Quality.SUBSTITUTED, Quality.FINAL_SUBSTITUTE, Quality.ESTIMATED)


@dataclass
class VeeReport:
    """What a VEE run did.

    ``intervals`` counts the validated intervals written: ``actual`` (quality A),
    ``estimated`` (S, F, E) and ``null`` (N). Edits kept as they are count in
    ``edits_kept`` only. ``channels`` is the number of meter-channel series processed.
    """

    meters: int = 0
    channels: int = 0
    intervals: int = 0
    actual: int = 0
    estimated: int = 0
    null: int = 0
    edits_kept: int = 0
    quality: Counter[str] = field(default_factory=Counter)
    checks: Counter[str] = field(default_factory=Counter)
    written: ValidatedWrite = field(default_factory=ValidatedWrite)
    read_seconds: float = 0.0
    compute_seconds: float = 0.0
    write_seconds: float = 0.0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "intervals": self.intervals,
            "actual": self.actual,
            "estimated": self.estimated,
            "null": self.null,
            "edits_kept": self.edits_kept,
            "meters": self.meters,
            "channels": self.channels,
            "quality": dict(self.quality),
            "checks": dict(self.checks),
            "inserted": self.written.inserted,
            "changed": self.written.changed,
            "unchanged": self.written.unchanged,
            "read_seconds": round(self.read_seconds, 3),
            "compute_seconds": round(self.compute_seconds, 3),
            "write_seconds": round(self.write_seconds, 3),
            "seconds": round(self.seconds, 3),
        }


def local_calendar(
    ends: I64, interval_s: int, timezone: str, holidays: Iterable[date]
) -> LocalCalendar:
    """Local day, weekday and wall-clock slot of each interval (by its start) on the grid
    ``ends``.

    The slot is the local wall-clock time of the interval's start over ``interval_s``, so
    07:00 is the same slot on a 23-hour and a 24-hour day. Across the autumn repeat both
    occurrences of an hour get its slot (the first is the one a like day lends); across
    the spring gap the skipped slot has no cell.
    """
    tz = zone(timezone)
    days_of = LocalDays(tz)
    starts = ends - interval_s
    offsets = np.array([_utc_offset(int(s), tz) for s in starts.tolist()], dtype=np.int64)
    wall = starts + offsets
    first = days_of.local_date(float(starts[0]))
    first_wall_day = (first - date(1970, 1, 1)).days
    day = wall // 86400 - first_wall_day
    slot = (wall % 86400) // interval_s
    n_days = int(day[-1]) + 1
    bounds = np.array(
        [days_of.day_start(first + timedelta(days=k)) for k in range(n_days + 1)],
        dtype=np.int64,
    )
    day_slots = -(-np.diff(bounds) // interval_s)
    weekday = (first.weekday() + day) % 7
    holiday_set = set(holidays)
    is_holiday_day = np.array(
        [(first + timedelta(days=k)) in holiday_set for k in range(n_days)], dtype=bool
    )
    cell_of = np.full((n_days, 86400 // interval_s), -1, dtype=np.int64)
    columns = np.arange(ends.size, dtype=np.int64)
    # First occurrence wins where the autumn repeat maps an hour twice.
    cell_of[day[::-1], slot[::-1]] = columns[::-1]
    return LocalCalendar(day, weekday, slot, is_holiday_day[day], cell_of, day_slots)


def _utc_offset(epoch: int, tz: tzinfo) -> int:
    offset = datetime.fromtimestamp(epoch, tz).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def _grid_positions(ends: I64, grid_start: int, interval_s: int, t: int) -> tuple[I64, I64]:
    """Column of each reading (-1 off the grid) and its offset from the column's end [s]."""
    rel = ends - grid_start
    col = (rel + interval_s // 2) // interval_s - 1
    offset = rel - (col + 1) * interval_s
    col[(col < 0) | (col >= t)] = -1
    return col, offset


def build_grid(
    rows: dict[str, np.ndarray],
    select: npt.NDArray[np.bool_],
    row_of: npt.NDArray[np.int64],
    *,
    m: int,
    t: int,
    grid_start: int,
    interval_s: int,
    config: VeeConfig,
    with_received: bool = True,
) -> tuple[ChannelGrid, I64 | None]:
    """Place the raw readings ``select`` picks on an ``m x t`` grid, the ``k``-th of them on
    row ``row_of[k]``; returns the grid and each cell's ``received_at`` (-1 where empty;
    None unless ``with_received``)."""
    every = bool(select.all())

    def selected(name: str) -> np.ndarray:
        column = rows[name]
        return column if every else column[select]

    value = np.full((m, t), np.nan)
    status = np.zeros((m, t), dtype=np.int64)
    time_fail = np.zeros((m, t), dtype=bool)
    col, offset = _grid_positions(selected("interval_end"), grid_start, interval_s, t)
    on = col >= 0
    within = on & (np.abs(offset) <= config.time_tolerance_s)
    picked: I64 | None = None  # which selected readings, in writing order (None: all)
    if not within.all():
        picked = np.flatnonzero(within)
    if (offset[within] != 0).any():
        # Closest reading wins a cell: write the farthest first.
        chosen = np.flatnonzero(within)
        picked = chosen[np.argsort(-np.abs(offset[chosen]), kind="stable")]
    cell = row_of * t + col if picked is None else row_of[picked] * t + col[picked]

    def placed(name: str) -> np.ndarray:
        column = selected(name)
        return column if picked is None else column[picked]

    value.reshape(-1)[cell] = placed("value")
    raw_status = placed("status")
    if raw_status.any():  # all-zero words leave the zero grid as it is
        status.reshape(-1)[cell] = raw_status
    received = None
    if with_received:
        received = np.full((m, t), -1, dtype=np.int64)
        received.reshape(-1)[cell] = placed("received_at")
    off = np.flatnonzero(on & ~within)
    if off.size:
        time_fail[row_of[off], col[off]] = True
        time_fail &= np.isnan(value)
    return ChannelGrid(value, status, time_fail), received


def outage_cells(
    events: pa.Table, row_of_meter: dict[str, int], ends: I64, interval_s: int, m: int
) -> BOOL2:
    """Cells wholly inside a logged outage (power down, code 1, until power up, code 2)."""
    outage = np.zeros((m, ends.size), dtype=bool)
    if events.num_rows == 0:
        return outage
    meters = events.column("meter").to_pylist()
    at = events.column("at").cast(pa.timestamp("s", tz="UTC")).cast(pa.int64()).to_pylist()
    codes = events.column("code").to_pylist()
    down: dict[str, int] = {}
    starts = ends - interval_s
    for meter, when, code in sorted(
        zip(meters, at, codes, strict=True), key=lambda x: (x[0], x[1])
    ):
        if code == EventCode.POWER_DOWN:
            down.setdefault(meter, when)
        elif code == EventCode.POWER_UP and meter in down:
            began = down.pop(meter)
            row = row_of_meter.get(meter)
            if row is not None:
                outage[row] |= (starts >= began) & (ends <= when)
    return outage


@dataclass(frozen=True)
class _Run:
    """The parameters of one VEE run, shared by its meter groups."""

    start: datetime
    end: datetime
    as_of: datetime
    config: VeeConfig
    history_days: int
    channels: Sequence[Channel]
    holidays: tuple[date, ...]
    actor: str


@dataclass
class _Group:
    """One group of meters on one grid of interval ends."""

    names: list[str]
    regs: list[MeterRegistration]
    ids: I64
    interval_s: int
    timezone: str
    grid_start: int
    window_col: int
    ends: I64

    @property
    def m(self) -> int:
        return len(self.names)

    @property
    def t(self) -> int:
        return int(self.ends.size)


def run_vee(
    store: IntervalStore,
    start: datetime,
    end: datetime,
    *,
    as_of: datetime,
    config: VeeConfig | None = None,
    history_days: int = 28,
    meters: Sequence[str] | None = None,
    channels: Sequence[Channel] = ENERGY_CHANNELS,
    holidays: Iterable[date] = (),
    actor: str = "vee",
    progress: Callable[[int, int], None] | None = None,
) -> VeeReport:
    """Validate and estimate intervals ending in ``(start, end]`` and write them back."""
    start, end, as_of = (
        ensure_utc(start, "start"),
        ensure_utc(end, "end"),
        ensure_utc(as_of, "as_of"),
    )
    end = min(end, as_of)  # nothing is validated or estimated beyond what has happened
    if end <= start:
        raise InvalidInputError("end", end.isoformat(), "must be after start (and before as_of)")
    began = time.perf_counter()
    run = _Run(
        start, end, as_of, config or VeeConfig(), history_days, channels, tuple(holidays), actor
    )
    registrations = [r for r in store.meters() if r.interval_s is not None]
    if meters is not None:
        wanted = set(meters)
        registrations = [r for r in registrations if r.meter in wanted]
    groups: dict[tuple[int, str], list[MeterRegistration]] = {}
    for reg in registrations:
        assert reg.interval_s is not None
        groups.setdefault((reg.interval_s, reg.timezone), []).append(reg)
    report = VeeReport(meters=len(registrations))
    chunks = [
        (key, regs[i : i + GROUP_SIZE])
        for key, regs in sorted(groups.items())
        for i in range(0, len(regs), GROUP_SIZE)
    ]
    for done, ((interval_s, timezone), regs) in enumerate(chunks):
        _run_group(store, regs, run, report, interval_s=interval_s, timezone=timezone)
        if progress is not None:
            progress(done + 1, len(chunks))
    report.seconds = time.perf_counter() - began
    return report


def _run_group(
    store: IntervalStore,
    regs: list[MeterRegistration],
    run: _Run,
    report: VeeReport,
    *,
    interval_s: int,
    timezone: str,
) -> None:
    clock = time.perf_counter()
    window_start_s = int(run.start.timestamp()) // interval_s * interval_s
    window_end_s = -(-int(run.end.timestamp()) // interval_s) * interval_s
    grid_start = window_start_s - run.history_days * 86400
    t = (window_end_s - grid_start) // interval_s
    ids = store.meter_ids([r.meter for r in regs])
    regs = [r for r in regs if r.meter in ids]
    if not regs:
        return
    group = _Group(
        names=[r.meter for r in regs],
        regs=regs,
        ids=np.array([ids[r.meter] for r in regs], dtype=np.int64),
        interval_s=interval_s,
        timezone=timezone,
        grid_start=grid_start,
        window_col=(window_start_s - grid_start) // interval_s,
        ends=grid_start + interval_s * np.arange(1, t + 1, dtype=np.int64),
    )
    channel_ids = store.channel_ids([c.obis for c in run.channels])
    wanted_channels = sorted(channel_ids.values())
    margin = run.config.time_tolerance_s + interval_s
    rows = store.fetch_intervals(
        grid_start - margin, window_end_s + margin, group.ids, wanted_channels
    )
    events = store.read_events(
        datetime.fromtimestamp(grid_start - 40 * 86400, UTC),
        datetime.fromtimestamp(window_end_s, UTC),
        group.names,
        [int(EventCode.POWER_DOWN), int(EventCode.POWER_UP)],
    )
    energy = [c.obis for c in run.channels if c.obis in (A_PLUS.obis, A_MINUS.obis)]
    registers = (
        store.read_registers(
            datetime.fromtimestamp(grid_start, UTC),
            datetime.fromtimestamp(window_end_s, UTC),
            group.names,
            energy,
        )
        if energy
        else None
    )
    edits = store.fetch_validated(
        window_start_s, window_end_s, group.ids, wanted_channels, method=int(Method.EDIT)
    )
    now = time.perf_counter()
    report.read_seconds += now - clock
    clock = now

    columns = _compute_group(
        group, run,
        rows=rows, events=events, registers=registers, edits=edits, channel_ids=channel_ids,
        report=report,
    )  # fmt: skip

    now = time.perf_counter()
    report.compute_seconds += now - clock
    clock = now
    if columns is not None:
        written = store.write_validated_columns(columns, run.actor)
        report.written = ValidatedWrite(
            report.written.inserted + written.inserted,
            report.written.changed + written.changed,
            report.written.unchanged + written.unchanged,
        )
    report.write_seconds += time.perf_counter() - clock


def _compute_group(
    group: _Group,
    run: _Run,
    *,
    rows: dict[str, np.ndarray],
    events: pa.Table,
    registers: pa.Table | None,
    edits: dict[str, np.ndarray],
    channel_ids: dict[str, int],
    report: VeeReport,
) -> ValidatedColumns | None:
    """Grids, validation, estimation and the validated rows of one meter group (no I/O)."""
    config, m, t, window_col = run.config, group.m, group.t, group.window_col
    row_of = _rows_of(group.ids, rows["meter_id"])
    row_of_meter = {name: i for i, name in enumerate(group.names)}
    calendar = local_calendar(group.ends, group.interval_s, group.timezone, run.holidays)
    outage = outage_cells(events, row_of_meter, group.ends, group.interval_s, m)

    grids: dict[str, tuple[I64, ChannelGrid, I64 | None]] = {}
    for channel in run.channels:
        select = rows["channel_id"] == channel_ids[channel.obis]
        if not select.any():
            continue
        members = np.flatnonzero(np.bincount(row_of[select], minlength=m))
        local_of = np.zeros(m, dtype=np.int64)
        local_of[members] = np.arange(members.size)
        grid, received = build_grid(
            rows, select, local_of[row_of[select]],
            m=members.size, t=t, grid_start=group.grid_start, interval_s=group.interval_s,
            config=config,
            with_received=bool((edits["channel_id"] == channel_ids[channel.obis]).any()),
        )  # fmt: skip
        grids[channel.obis] = (members, grid, received)
    if not grids:
        return None

    reverse_all = None
    if A_MINUS.obis in grids:
        members, grid, _ = grids[A_MINUS.obis]
        export = np.full((m, t), np.nan)
        export[members] = grid.value
        generation = np.array([r.has_generation for r in group.regs], dtype=bool)
        with np.errstate(invalid="ignore"):
            reverse_all = (~generation[:, None]) & (export > config.reverse_flow_threshold)
    capacity = np.array([r.profile_capacity_days for r in group.regs], dtype=np.int64)
    final_before = (int(run.as_of.timestamp()) - capacity * 86400 - group.grid_start) // (
        group.interval_s
    )

    parts: list[ValidatedColumns] = []
    for obis, (members, grid, received) in grids.items():
        flow = None
        if reverse_all is not None and obis in (A_PLUS.obis, A_MINUS.obis):
            flow = reverse_all[members]
        checks = validate(
            grid, group.interval_s, window_col, config,
            reverse_flow=flow,
            sum_check=_sum_failures(
                registers, obis, members=members, group=group, grid=grid, config=config
            ),
            outage=outage[members],
        )  # fmt: skip
        est = estimate(
            grid.value, checks, group.interval_s,
            calendar=calendar, config=config, final_before=final_before[members],
            first_col=window_col,
        )  # fmt: skip
        parts.append(
            _window_rows(
                group,
                members,
                received=received,
                edits=edits,
                channel_id=channel_ids[obis],
                checks=checks,
                est=est,
                report=report,
            )
        )
        report.channels += int(members.size)
    return ValidatedColumns.concat(parts)


def _rows_of(ids: I64, meter_id: npt.NDArray[np.integer]) -> I64:
    """The group row of each reading's meter id (the store reads only the group's meters).

    A lookup table where the ids are dense enough (the usual case), else a binary search.
    """
    m = ids.size
    if meter_id.size and ids.min() >= 0 and int(ids.max()) < 16 * m + 4096:
        table = np.full(int(ids.max()) + 1, -1, dtype=np.int64)
        table[ids] = np.arange(m, dtype=np.int64)
        if meter_id.min() >= 0 and meter_id.max() < table.size:
            found: I64 = table[meter_id]
            if found.min() >= 0:
                return found
    order = np.argsort(ids)
    row_of: I64 = order[np.clip(np.searchsorted(ids[order], meter_id), 0, m - 1)]
    return row_of


def _window_rows(
    group: _Group,
    members: I64,
    *,
    received: I64 | None,
    edits: dict[str, np.ndarray],
    channel_id: int,
    checks: I64,
    est: Estimates,
    report: VeeReport,
) -> ValidatedColumns:
    """The window's validated rows of one channel grid, edits kept where no newer actual
    arrived, with the report's counts."""
    window_col, t = group.window_col, group.t
    width = t - window_col
    keep = np.ones((members.size, width), dtype=bool)
    mine = edits["channel_id"] == channel_id
    if mine.any():
        assert received is not None  # built where the channel has edits
        local_of = np.full(group.m, -1, dtype=np.int64)
        local_of[members] = np.arange(members.size)
        order = np.argsort(group.ids)
        pos = np.clip(np.searchsorted(group.ids[order], edits["meter_id"][mine]), 0, group.m - 1)
        e_row = local_of[order[pos]]
        e_col = (edits["interval_end"][mine] - group.grid_start) // group.interval_s - 1
        inside = (e_row >= 0) & (e_col >= window_col) & (e_col < t)
        e_row, e_col = e_row[inside], e_col[inside]
        later = received[e_row, e_col] > edits["validated_at"][mine][inside]
        keep[e_row[~later], e_col[~later] - window_col] = False
        report.edits_kept += int((~later).sum())
    quality = est.quality  # the window's columns only
    window_checks = checks[:, window_col:]
    every = keep.all()
    flat = None if every else np.flatnonzero(keep)

    def pick(values: np.ndarray) -> np.ndarray:
        out = values.reshape(-1)
        return out if flat is None else out[flat]

    q = pick(quality)
    counts = np.bincount(q, minlength=128)
    for code in Quality:
        if counts[ord(code.value)]:
            report.quality[code.value] += int(counts[ord(code.value)])
    report.actual += int(counts[ord(Quality.ACTUAL.value)])
    report.estimated += int(sum(counts[ord(code.value)] for code in _ESTIMATED))
    report.null += int(counts[ord(Quality.NULL.value)])
    picked_checks = pick(window_checks)
    report.intervals += int(q.size)
    failed = picked_checks[picked_checks != 0]  # few cells fail a check
    for check in Check:
        count = int(np.count_nonzero(failed & int(check)))
        if count:
            report.checks[check.name or str(int(check))] += count
    return ValidatedColumns(
        meter_id=pick(np.broadcast_to(group.ids[members][:, None], keep.shape)),
        channel_id=np.full(q.size, channel_id, dtype=np.int64),
        interval_end=pick(np.broadcast_to(group.ends[window_col:], keep.shape)),
        value=pick(est.value),
        quality=q,
        method=pick(est.method),
        checks=picked_checks,
    )


def _sum_failures(
    registers: pa.Table | None,
    obis: str,
    *,
    members: I64,
    group: _Group,
    grid: ChannelGrid,
    config: VeeConfig,
) -> BOOL2 | None:
    """Sum-check failures of one energy channel's grid against its register reads."""
    if registers is None or registers.num_rows == 0 or obis not in (A_PLUS.obis, A_MINUS.obis):
        return None
    at = registers.column("read_at").cast(pa.timestamp("s", tz="UTC")).cast(pa.int64())
    at = np.asarray(at.to_numpy())
    rel = at - group.grid_start
    col = rel // group.interval_s - 1
    aligned = (rel % group.interval_s == 0) & (col >= 0)
    local_of = np.full(group.m, -1, dtype=np.int64)
    local_of[members] = np.arange(members.size)
    row_of_meter = {name: i for i, name in enumerate(group.names)}
    meters = registers.column("meter").to_pylist()
    row = local_of[np.array([row_of_meter.get(x, 0) for x in meters], dtype=np.int64)]
    row[np.array([x not in row_of_meter for x in meters], dtype=bool)] = -1
    codes = np.array(registers.column("obis").to_pylist(), dtype=object)
    value = np.asarray(registers.column("value").to_numpy())
    pick = aligned & (row >= 0) & (codes == obis)
    if not pick.any():
        return None
    return sum_check_failures(grid.value, row[pick], col[pick], value[pick], config)
