"""Energy balance, technical losses and theft detection, scored against injected truth."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from scipy.optimize import nnls

from meterstack.analytics import (
    NetworkModel,
    TechnicalLossModel,
    customer_sums,
    detect_theft,
    energy_balance,
)
from meterstack.analytics.theft import _consumption_drop, _longest_flat_run, _nnls_batched
from meterstack.core.errors import InvalidInputError
from meterstack.sim.grid import GridScenario, generate_grid


def _two_transformers() -> NetworkModel:
    return NetworkModel(
        meters=("A", "B", "C"),
        transformers=("T0", "T1", "T2"),
        feeders=("F",),
        meter_transformer=np.array([0, 0, 2], np.int32),
        transformer_feeder=np.array([0, 0, 0], np.int32),
        rating_kva=np.array([100.0, 50.0, np.nan]),
        check_meters=("C0", None, "C2"),
    )


def test_technical_losses_by_hand() -> None:
    model = TechnicalLossModel(meter_self_w=2.0, line_loss_at_rated=0.05, power_factor=1.0)
    # 100 kVA at PF 1: rated 100 kW. 25 kWh in 30 min = 50 kW = half load.
    # Joule: 0.05 * 100 kW * 0.5^2 * 0.5 h = 625 Wh; meters: 2 * 2 W * 0.5 h = 2 Wh.
    losses = model.losses_wh(
        np.array([[25_000.0]], np.float32), np.array([2]), np.array([100.0]), 1800
    )
    assert losses[0, 0] == pytest.approx(627.0, rel=1e-6)
    with pytest.raises(InvalidInputError, match="line_loss_at_rated"):
        TechnicalLossModel(line_loss_at_rated=0.9)


def test_energy_balance_by_hand() -> None:
    network = _two_transformers()
    customer = np.array([[100.0, 200.0], [50.0, 0.0], [10.0, 10.0]], np.float32)
    export = np.array([[0.0, 20.0], [0.0, 0.0], [0.0, 0.0]], np.float32)
    assert customer_sums(network, customer).tolist() == [[150, 200], [0, 0], [10, 10]]
    model = TechnicalLossModel(meter_self_w=0.0, line_loss_at_rated=0.0)
    check = np.array([[160.0, 190.0], [np.nan, np.nan], [10.0, 10.0]], np.float32)
    balance = energy_balance(network, customer, check, 1800, model, customer_export_wh=export)
    assert balance.billed_wh[0].tolist() == [150.0, 180.0]
    assert balance.non_technical_wh[0].tolist() == [10.0, 10.0]
    assert balance.has_check_meter.tolist() == [True, False, True]
    share = balance.ntl_share
    assert share[0] == pytest.approx(20 / 350)
    assert np.isnan(share[1])
    assert share[2] == 0.0
    with pytest.raises(InvalidInputError, match="n_transformers"):
        energy_balance(network, customer, check[:2], 1800)
    with pytest.raises(InvalidInputError, match="negative"):
        energy_balance(network, -customer, check, 1800)


def test_batched_nnls_matches_scipy() -> None:
    """The active-set solver against SciPy's Lawson-Hanson NNLS, an independent reference."""
    rng = np.random.default_rng(3)
    grams, rhss, expected = [], [], []
    for _ in range(40):
        a = rng.normal(size=(60, 6))
        y = a @ np.array([0.5, 0.0, 0.0, 1.2, 0.0, 0.1]) + rng.normal(scale=0.3, size=60)
        grams.append(a.T @ a)
        rhss.append(a.T @ y)
        expected.append(nnls(a, y)[0])
    valid = np.ones((40, 6), dtype=bool)
    got = _nnls_batched(np.array(grams), np.array(rhss), valid)
    np.testing.assert_allclose(got, np.array(expected), atol=1e-6)


def test_flat_runs() -> None:
    x = np.array([[1, 2, 2, 2, 3], [0, 0, 0, 0, 0], [1, 2, 3, 4, 5]], np.float32)
    assert _longest_flat_run(x).tolist() == [3, 5, 0]


@pytest.fixture(scope="module")
def scenario() -> GridScenario:
    return generate_grid(2500, datetime(2026, 3, 2, tzinfo=UTC), 28, seed=11)


def test_theft_precision_and_recall_on_injected_thieves(scenario: GridScenario) -> None:
    """Issue target: recall >= 0.9 at precision >= 0.8 for bypasses of >= 30 %."""
    balance = energy_balance(
        scenario.network,
        scenario.customer_wh,
        scenario.check_wh,
        scenario.interval_s,
        customer_export_wh=scenario.export_wh,
    )
    result = detect_theft(
        scenario.network,
        scenario.customer_wh,
        balance,
        scenario.interval_s,
        fraud_events=scenario.fraud_events,
    )
    truth = set(scenario.thieves.tolist())
    flagged = set(np.flatnonzero(result.flagged).tolist())
    hits = len(truth & flagged)
    precision, recall = hits / max(len(flagged), 1), hits / len(truth)
    print(f"theft: {len(truth)} thieves, precision {precision:.3f}, recall {recall:.3f}")
    assert len(truth) >= 80
    assert recall >= 0.9
    assert precision >= 0.8
    # The estimated share is close to the injected one for the thieves found.
    found = sorted(truth & flagged)
    error = np.abs(result.stolen_share[found] - scenario.stolen_share[found])
    assert np.median(error) < 0.05
    # The list is ranked and gives its evidence.
    scores = [s.score for s in result.suspects]
    assert scores == sorted(scores, reverse=True)
    top = result.suspects[0]
    assert top.reasons
    assert top.serial == scenario.network.meters[top.meter]
    with_events = [s for s in result.suspects if s.fraud_events]
    assert with_events
    assert all("fraud events" in " ".join(s.reasons) for s in with_events)


def test_no_thieves_no_balance_suspects(scenario: GridScenario) -> None:
    honest = scenario.true_import_wh
    balance = energy_balance(
        scenario.network,
        honest,
        scenario.check_wh,
        scenario.interval_s,
        customer_export_wh=scenario.export_wh,
    )
    result = detect_theft(scenario.network, honest, balance, scenario.interval_s)
    assert not result.flagged.any()


def test_theft_bad_input(scenario: GridScenario) -> None:
    balance = energy_balance(
        scenario.network, scenario.customer_wh, scenario.check_wh, scenario.interval_s
    )
    with pytest.raises(InvalidInputError, match="window_days"):
        detect_theft(
            scenario.network, scenario.customer_wh, balance, scenario.interval_s, window_days=99
        )
    with pytest.raises(InvalidInputError, match="fraud_events"):
        detect_theft(
            scenario.network,
            scenario.customer_wh,
            balance,
            scenario.interval_s,
            fraud_events={"magnet": np.zeros(3, np.int64)},
        )


def test_consumption_drop_is_relative_to_the_transformers_median() -> None:
    rng = np.random.default_rng(1)
    n, n_t = 500, 61
    assignment = np.sort(rng.integers(0, n_t - 1, n)).astype(np.int32)  # the last one empty
    network = NetworkModel(
        meters=tuple(f"M{i}" for i in range(n)),
        transformers=tuple(f"T{t}" for t in range(n_t)),
        feeders=("F",),
        meter_transformer=assignment,
        transformer_feeder=np.zeros(n_t, np.int32),
        rating_kva=np.full(n_t, np.nan),
        check_meters=tuple(None for _ in range(n_t)),
    )
    x = rng.random((n, 100)).astype(np.float32)
    x[::7, :20] = 0.0  # no first-window use: no ratio
    first = x[:, :20].mean(axis=1, dtype=np.float64)
    last = x[:, -20:].mean(axis=1, dtype=np.float64)
    ratio = np.full(n, np.nan)
    ratio[first > 0] = last[first > 0] / first[first > 0]
    expected = np.zeros(n)
    for t in range(n_t):
        mine = assignment == t
        finite = ratio[mine][np.isfinite(ratio[mine])]
        if finite.size:
            drop = 1.0 - ratio[mine] / np.median(finite)
            expected[mine] = np.nan_to_num(np.clip(drop, 0.0, 1.0), nan=0.0)
    np.testing.assert_allclose(_consumption_drop(network, x, 20), expected)
