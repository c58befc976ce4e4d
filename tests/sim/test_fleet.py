"""The fleet simulator: plans are reproducible, the meters book what the load shapes say,
and the result does not depend on the number of worker processes."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from meterstack.core import InvalidInputError
from meterstack.meter import ControlState
from meterstack.sim.fleet import run_fleet
from meterstack.sim.loadshapes import CustomerClass, generate_load_shapes
from meterstack.sim.scenario import InjectionKind, plan_fleet

START = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def shapes():  # type: ignore[no-untyped-def]
    return generate_load_shapes(40, START, 3, seed=11)


def test_plans_are_reproducible_and_sensible(shapes) -> None:  # type: ignore[no-untyped-def]
    first = plan_fleet(shapes, seed=5)
    second = plan_fleet(shapes, seed=5)
    assert [c.model_dump() for c in first.configs] == [c.model_dump() for c in second.configs]
    assert first.injections == second.injections
    prepaid = [i for i, c in enumerate(first.configs) if c.prepaid is not None]
    assert prepaid, "a residential fleet has prepaid customers"
    assert all(shapes.customer_class[i] == CustomerClass.RESIDENTIAL for i in prepaid)
    assert set(first.habits) == set(prepaid)
    assert all(0 <= j.first <= j.last < shapes.n_intervals for j in first.injections)
    assert any(j.kind == InjectionKind.OUTAGE for j in first.injections)


def test_bad_plan_parameters(shapes) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInputError) as caught:
        plan_fleet(shapes, seed=1, prepaid_share=1.5)
    assert caught.value.field == "prepaid_share"
    plan = plan_fleet(shapes, seed=1)
    with pytest.raises(InvalidInputError) as caught:
        run_fleet(shapes, plan, workers=0)
    assert caught.value.field == "workers"


def test_meters_book_what_the_load_shapes_say(tmp_path, shapes) -> None:  # type: ignore[no-untyped-def]
    from meterstack.meter import Meter, NonVolatileDatabase

    plan = plan_fleet(shapes, seed=5, prepaid_share=0.0, tamper_share=0.0)
    summary = run_fleet(shapes, plan, workers=1, state_dir=tmp_path)
    assert summary.steps == shapes.n_meters * shapes.n_intervals
    assert summary.profile_mismatches == 0
    assert summary.restore_mismatches == 0
    assert summary.restored_checked == shapes.n_meters
    assert summary.events["power_down"] == summary.events["power_up"] > 0
    # Each meter registers the energy of its load shape, except while its feeder is out.
    outage = plan.masks(shapes.n_intervals)[InjectionKind.OUTAGE]
    database = NonVolatileDatabase(tmp_path / "nv-00.db")
    for index, config in enumerate(plan.configs):
        meter = Meter.restore(config, database.store(config.serial))
        assert meter is not None
        supplied = ~outage[index]
        imported = float(shapes.import_wh[index, supplied].astype(np.float64).sum())
        exported = float(shapes.export_wh[index, supplied].astype(np.float64).sum())
        assert abs(meter.registers.a_plus - imported) <= 1.0 + imported * 1e-6, config.serial
        assert abs(meter.registers.a_minus - exported) <= 1.0 + exported * 1e-6, config.serial
    assert summary.import_kwh == pytest.approx(
        float(shapes.import_wh[~outage].astype(np.float64).sum()) / 1000, abs=shapes.n_meters / 1000
    )


def test_prepaid_customers_top_up_and_the_result_is_worker_independent(shapes) -> None:  # type: ignore[no-untyped-def]
    plan = plan_fleet(shapes, seed=9, prepaid_share=1.0, tamper_share=0.2)
    one = run_fleet(shapes, plan, workers=1)
    two = run_fleet(shapes, plan, workers=2)
    assert one.to_json() | {"wall_s": 0, "steps_per_s": 0} == two.to_json() | {
        "wall_s": 0,
        "steps_per_s": 0,
    }
    assert one.top_ups > 0
    assert one.purchased > 0
    assert sum(one.disconnections.values()) > 0
    assert one.events["credit_low"] > 0
    fraud = {
        "terminal_cover_removed",
        "strong_dc_field_detected",
        "meter_cover_removed",
        "current_reversal",
    }
    assert fraud & set(one.events)


def test_a_kept_state_directory_restores(tmp_path, shapes) -> None:  # type: ignore[no-untyped-def]
    from meterstack.meter import Meter, NonVolatileDatabase

    plan = plan_fleet(shapes, seed=3)
    run_fleet(shapes, plan, workers=1, state_dir=tmp_path)
    database = NonVolatileDatabase(tmp_path / "nv-00.db")
    assert len(database.serials()) == shapes.n_meters
    meter = Meter.restore(plan.configs[0], database.store(plan.configs[0].serial))
    assert meter is not None
    assert meter.measured_until == datetime.fromtimestamp(
        int(shapes.interval_end[-1].astype("datetime64[s]").astype(np.int64)), UTC
    )
    assert meter.relay.state in tuple(ControlState)
