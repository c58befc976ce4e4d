"""Outage inference: a hand-worked case, the storm, inference from missed reads, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from meterstack.analytics import (
    NetworkModel,
    OutageLevel,
    PowerEventKind,
    PowerEvents,
    find_outages,
)
from meterstack.core.errors import InvalidInputError

GASP, RESTORE = PowerEventKind.LAST_GASP, PowerEventKind.RESTORE
T0 = 1_780_000_000.0


def _network(per_transformer: list[int], feeders: list[int]) -> NetworkModel:
    assignment = np.repeat(np.arange(len(per_transformer)), per_transformer).astype(np.int32)
    return NetworkModel(
        meters=tuple(f"M{i}" for i in range(assignment.size)),
        transformers=tuple(f"T{t}" for t in range(len(per_transformer))),
        feeders=tuple(f"F{f}" for f in range(max(feeders) + 1)),
        meter_transformer=assignment,
        transformer_feeder=np.asarray(feeders, dtype=np.int32),
        rating_kva=np.full(len(per_transformer), 100.0),
        check_meters=tuple(None for _ in per_transformer),
    )


def _events(rows: list[tuple[int, float, int]]) -> PowerEvents:
    return PowerEvents(
        np.array([r[0] for r in rows], np.int32),
        np.array([T0 + r[1] for r in rows]),
        np.array([r[2] for r in rows], np.int8),
    )


def test_hand_worked_case_with_ieee_1366_indices() -> None:
    # T0: meters 0-2, T1: meters 3-5 (feeder 0); T2: meters 6-9 (feeder 1).
    network = _network([3, 3, 4], [0, 0, 1])
    rows = [
        # T0 out for 30 min; meter 1's gasp arrives twice (a resend).
        (0, 0, GASP),
        (1, 2, GASP),
        (1, 2, GASP),
        (2, 3, GASP),
        (0, 1800, RESTORE),
        (1, 1801, RESTORE),
        (2, 1802, RESTORE),
        # Meter 6 alone, a blown service fuse for 1 h.
        (6, 5000, GASP),
        (6, 8600, RESTORE),
        # T1 blinks for 2 min: momentary.
        (3, 9000, GASP),
        (4, 9001, GASP),
        (5, 9001, GASP),
        (3, 9120, RESTORE),
        (4, 9120, RESTORE),
        (5, 9121, RESTORE),
    ]
    report = find_outages(network, _events(rows), as_of=T0 + 86400)
    assert report.events_repeated == 1
    assert [(o.level, o.transformer, o.customers) for o in report.outages] == [
        (OutageLevel.TRANSFORMER, 0, 3),
        (OutageLevel.PREMISE, 2, 1),
        (OutageLevel.TRANSFORMER, 1, 3),
    ]
    first, fuse, _blink = report.outages
    assert (first.start, first.end) == (T0, T0 + 1802)
    # Each meter's own minutes: 1800, 1799, 1799 s.
    assert first.customer_minutes == pytest.approx((1800 + 1799 + 1799) / 60)
    assert fuse.customer_minutes == pytest.approx(60.0)
    indices = report.indices
    # IEEE 1366: SAIFI = customers interrupted (sustained) / served = 4 / 10;
    # SAIDI = customer minutes (sustained) / served; MAIFI = momentary / served = 3 / 10.
    assert indices.saifi == pytest.approx(0.4)
    assert indices.saidi_min == pytest.approx(((1800 + 1799 + 1799) / 60 + 60) / 10)
    assert indices.caidi_min == pytest.approx(indices.saidi_min / indices.saifi)
    assert indices.maifi == pytest.approx(0.3)
    assert indices.momentary_interruptions == 3


def test_open_outage_runs_to_as_of_and_feeder_roll_up() -> None:
    network = _network([2, 2, 2], [0, 0, 1])
    rows = [(0, 0, GASP), (1, 1, GASP), (2, 1, GASP), (3, 2, GASP)]
    report = find_outages(network, _events(rows), as_of=T0 + 600)
    assert len(report.outages) == 2
    assert all(o.open for o in report.outages)
    # Both transformers of feeder 0 went together: one feeder event.
    assert {o.feeder_event for o in report.outages} == {1}
    assert report.outages[0].customer_minutes == pytest.approx((600 + 599) / 60)


def test_missed_reads_and_lost_gasps_are_inferred() -> None:
    network = _network([5], [0])
    rows = [(0, 0, GASP), (1, 1, GASP), (2, 1, GASP), (3, 2, GASP)]
    # Meter 4 sent nothing and has not been read since before the outage.
    last_heard = np.full(5, T0 + 3600.0)
    last_heard[4] = T0 - 900.0
    report = find_outages(network, _events(rows), as_of=T0 + 3600, last_heard=last_heard)
    (outage,) = report.outages
    assert outage.meters.tolist() == [0, 1, 2, 3]
    assert outage.inferred.tolist() == [4]
    assert outage.customers == 5
    # A restore whose gasp was lost joins the outage; a lost restore is imputed.
    rows = [(0, 0, GASP), (1, 1, GASP), (2, 1, GASP), (3, 2, GASP)]
    rows += [(0, 600, RESTORE), (1, 600, RESTORE), (2, 601, RESTORE), (4, 602, RESTORE)]
    report = find_outages(network, _events(rows), as_of=T0 + 3600)
    (outage,) = report.outages
    assert outage.inferred.tolist() == [4]
    assert outage.end == T0 + 601  # meter 3's lost restore taken as the last of the others
    assert report.orphan_restores.size == 0


def test_storm_one_outage_per_transformer_and_no_gasp_lost() -> None:
    """100,000 meters; 20 % send last gasps within 60 s; 10 % of the gasps arrive twice."""
    rng = np.random.default_rng(7)
    sizes = rng.integers(5, 40, 6000)
    sizes = sizes[np.cumsum(sizes) <= 100_000]
    sizes = np.append(sizes, 100_000 - sizes.sum())
    feeders = np.arange(sizes.size) // 20
    network = _network(sizes.tolist(), feeders.tolist())
    order = rng.permutation(sizes.size)
    out = order[np.cumsum(sizes[order]) <= 20_000]
    meters = np.concatenate([network.meters_of(int(t)) for t in out])
    gasp_at = T0 + rng.uniform(0, 60, meters.size)
    again = rng.random(meters.size) < 0.10
    restore_at = T0 + 3600 + rng.uniform(0, 30, meters.size)
    events = PowerEvents(
        np.concatenate([meters, meters[again], meters]).astype(np.int32),
        np.concatenate([gasp_at, gasp_at[again], restore_at]),
        np.concatenate(
            [np.full(meters.size + again.sum(), GASP), np.full(meters.size, RESTORE)]
        ).astype(np.int8),
    )
    shuffle = rng.permutation(events.meter.size)
    events = PowerEvents(events.meter[shuffle], events.at[shuffle], events.kind[shuffle])
    report = find_outages(network, events, as_of=T0 + 7200)
    assert meters.size >= 19_000
    assert report.events_repeated == again.sum()
    assert all(o.level is OutageLevel.TRANSFORMER for o in report.outages)
    assert sorted(o.transformer for o in report.outages) == sorted(out.tolist())
    counted = np.concatenate([o.meters for o in report.outages])
    assert np.array_equal(np.sort(counted), np.sort(meters))  # every gasp, once
    assert not any(o.open for o in report.outages)
    assert report.indices.saifi == pytest.approx(meters.size / 100_000)


@pytest.mark.parametrize(
    ("events", "words"),
    [
        (PowerEvents(np.array([9], np.int32), np.array([T0]), np.array([1], np.int8)), "network"),
    ],
)
def test_bad_input(events: PowerEvents, words: str) -> None:
    network = _network([2], [0])
    with pytest.raises(InvalidInputError, match=words):
        find_outages(network, events, as_of=T0)


def test_bad_events_and_parameters() -> None:
    with pytest.raises(InvalidInputError, match="finite") as error:
        PowerEvents(np.array([0], np.int32), np.array([np.nan]), np.array([1], np.int8))
    assert error.value.field == "events.at[0]"
    with pytest.raises(InvalidInputError, match="last gasp"):
        PowerEvents(np.array([0], np.int32), np.array([T0]), np.array([7], np.int8))
    with pytest.raises(InvalidInputError, match="one length"):
        PowerEvents(np.array([0, 1], np.int32), np.array([T0]), np.array([1], np.int8))
    network = _network([2], [0])
    empty = _events([])
    with pytest.raises(InvalidInputError, match="share"):
        find_outages(network, empty, as_of=T0, min_share=0)
    with pytest.raises(InvalidInputError, match="shape"):
        find_outages(network, empty, as_of=T0, last_heard=np.zeros(3))
    assert find_outages(network, empty, as_of=T0).outages == []
    with pytest.raises(InvalidInputError, match="not in the network"):
        PowerEvents.from_records(network, [("M7", T0, 1)])
