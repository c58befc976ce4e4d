"""The simulator's injected outages, found again from the events the meters send."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from meterstack.analytics import find_outages
from meterstack.core.errors import InvalidInputError
from meterstack.sim.grid import generate_grid


def test_injected_outages_are_found() -> None:
    scenario = generate_grid(3000, datetime(2026, 1, 5, tzinfo=UTC), 28, seed=2, outages_per_week=8)
    report = find_outages(
        scenario.network,
        scenario.power_events,
        as_of=scenario.as_of,
        last_heard=scenario.last_heard,
    )
    assert len(scenario.outages) >= 10
    found = {(o.transformer, round(o.start)) for o in report.outages}
    events = scenario.power_events
    for truth in scenario.outages:
        near = np.isin(events.meter, truth.meters) & (np.abs(events.at - truth.start) < 10)
        if not near.any():
            # Every last gasp was lost: only the restores tell, and they are reported.
            assert set(report.orphan_restores.tolist()) & set(truth.meters.tolist())
            continue
        if truth.level == "feeder":
            transformers = np.unique(scenario.network.meter_transformer[truth.meters])
            hits = [
                o
                for o in report.outages
                if o.transformer in transformers.tolist() and abs(o.start - truth.start) < 10
            ]
            assert len(hits) == transformers.size
            if transformers.size > 1:
                assert len({o.feeder_event for o in hits}) == 1
                assert hits[0].feeder_event is not None
            continue
        match = [
            o
            for o in report.outages
            if o.transformer == truth.transformer and abs(o.start - truth.start) < 10
        ]
        assert len(match) == 1, (truth, found)
        (outage,) = match
        assert set(outage.meters.tolist()) | set(outage.inferred.tolist()) <= set(
            truth.meters.tolist()
        )
        if not outage.open:
            assert outage.end == pytest.approx(truth.end, abs=10)


def test_generator_is_reproducible_and_checks_its_arguments() -> None:
    start = datetime(2026, 1, 5, tzinfo=UTC)
    a = generate_grid(300, start, 7, seed=4)
    b = generate_grid(300, start, 7, seed=4)
    assert np.array_equal(a.customer_wh, b.customer_wh)
    assert np.array_equal(a.stolen_share, b.stolen_share)
    # Honest customers' meters record the truth; thieves' record less from their onset.
    honest = a.stolen_share == 0
    assert np.array_equal(a.customer_wh[honest], a.true_import_wh[honest])
    for meter in a.thieves:
        onset = a.theft_onset[meter]
        np.testing.assert_allclose(
            a.customer_wh[meter, onset:],
            a.true_import_wh[meter, onset:] * (1 - a.stolen_share[meter]),
            rtol=1e-5,
        )
    with pytest.raises(InvalidInputError, match="thief_share"):
        generate_grid(300, start, 7, thief_share=0.9)
    with pytest.raises(InvalidInputError, match="theft_range"):
        generate_grid(300, start, 7, theft_range=(0.5, 0.2))
