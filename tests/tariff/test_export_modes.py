"""Export modes of the general engine on small loads whose bills are worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from meterstack.tariff.model import Tariff
from meterstack.tariff.rating import rate

HOUR = np.timedelta64(1, "h")


def test_net_metering_with_money_credits_by_hand() -> None:
    tariff = Tariff.model_validate(
        {
            "name": "nm credit",
            "fixed": [{"amount": 10.0}],
            "energy": {
                "periods": [
                    {
                        "name": "off",
                        "tiers": [
                            {"max": 100, "rate": 0.10, "sell": 0.04},
                            {"rate": 0.15, "sell": 0.04},
                        ],
                    },
                    {
                        "name": "peak",
                        "tiers": [
                            {"max": 100, "rate": 0.30, "sell": 0.10},
                            {"rate": 0.40, "sell": 0.10},
                        ],
                    },
                ],
                "schedule": {
                    "seasons": [
                        {
                            "name": "all year",
                            "months": list(range(1, 13)),
                            "weekday": {"peak": ["12-18"]},
                            "default": "off",
                        }
                    ]
                },
            },
            "export": {"mode": "net_metering_credit", "true_up_month": 2},
        }
    )
    start = np.datetime64("2024-01-01T00:00")
    ends = start + np.arange(1, 91 * 24 + 1) * HOUR  # January to March 2024, hourly
    imp = np.zeros(ends.shape[0])
    exp = np.zeros(ends.shape[0])

    def put(target: np.ndarray, begins: str, kwh: float) -> None:
        target[int((np.datetime64(begins) - start) / HOUR)] = kwh

    put(imp, "2024-01-02T13:00", 20.0)  # Tuesday, peak
    put(exp, "2024-01-06T10:00", 300.0)  # Saturday, off
    put(imp, "2024-02-06T13:00", 10.0)  # Tuesday, peak
    put(exp, "2024-02-10T10:00", 250.0)  # Saturday, off
    put(imp, "2024-03-05T13:00", 120.0)  # Tuesday, peak
    put(imp, "2024-03-09T10:00", 80.0)  # Saturday, off
    result = rate(tariff, ends, imp[None], exp[None])
    # January: peak 20 kWh in block 1: 6.00; off surplus 300 kWh earns 300 x 0.04 = 12.00,
    # 6.00 of it pays January's energy and 6.00 is carried.
    # February (true-up): peak 10 kWh: 3.00; surplus 250 x 0.04 = 10.00; credit 6 + 10 = 16,
    # 3.00 applied, the remaining 13.00 paid out at true-up.
    # March: the credit starts from zero; peak 120 and off 80 share the blocks by use
    # (200 kWh: 100 + 100): peak 60 + 60, off 40 + 40:
    # 60 x 0.30 + 60 x 0.40 + 40 x 0.10 + 40 x 0.15 = 52.00.
    assert result.energy[0].tolist() == pytest.approx([6.0, 3.0, 52.0])
    assert result.export_credit[0].tolist() == pytest.approx([6.0, 3.0 + 13.0, 0.0])
    assert result.total[0].tolist() == pytest.approx([10.0, 10 + 3 - 16.0, 62.0])
    assert np.allclose(result.energy_kwh[0, 2], [[40.0, 40.0], [60.0, 60.0]])


def _single_period(mode: str) -> Tariff:
    return Tariff.model_validate(
        {
            "name": mode,
            "billing": {"prorate": False},
            "energy": {
                "periods": [
                    {
                        "name": "all",
                        "tiers": [
                            {"max": 2.5, "rate": 0.10, "sell": 0.05},
                            {"rate": 0.20, "sell": 0.03},
                        ],
                    }
                ]
            },
            "export": {"mode": mode},
        }
    )


QUARTER = np.timedelta64(15, "m")
ENDS = np.datetime64("2024-03-05T00:00") + np.arange(1, 13) * QUARTER
# a meter's 15-min import and export registers (netted within each interval)
IMP = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0.5, 0.5, 0.5, 0.5])
EXP = np.array([0, 0, 0.5, 0.5, 0.3, 0.3, 0.3, 0.3, 0, 0, 0, 0])


def test_net_billing_hourly_nets_each_clock_hour() -> None:
    result = rate(_single_period("net_billing_hourly"), ENDS, IMP[None], EXP[None])
    # hours (UTC): +1.0, -1.2, +2.0. Bought in time order: 1.0 then 2.0 -> 2.5 in block 1,
    # 0.5 in block 2: 0.25 + 0.10 = 0.35. Sold: 1.2 in block 1 at 0.05 = 0.06.
    assert result.energy[0, 0] == pytest.approx(0.35)
    assert result.export_credit[0, 0] == pytest.approx(0.06)
    assert result.total[0, 0] == pytest.approx(0.29)
    # each interval on its own instead: bought 2 + 2 = 4 (2.5 + 1.5), sold 1.0 + 1.2:
    # 0.25 + 0.30 = 0.55 and 2.2 x 0.05 = 0.11
    each = rate(_single_period("net_billing_instantaneous"), ENDS, IMP[None], EXP[None])
    assert each.energy[0, 0] == pytest.approx(0.55)
    assert each.export_credit[0, 0] == pytest.approx(0.11)


def test_net_billing_hourly_uses_local_clock_hours() -> None:
    tariff = _single_period("net_billing_hourly").model_copy(update={"timezone": "Asia/Kolkata"})
    result = rate(tariff, ENDS, IMP[None], EXP[None])
    # UTC+05:30: the local hours hold intervals [0-1], [2-5], [6-9], [10-11]:
    # nets +2.0, -(0.5 + 0.5 + 0.3 + 0.3) = -1.6, 1.0 - 0.6 = +0.4, +1.0.
    # Bought: 2.0, 0.4 (2.4 so far), 1.0 -> 2.5 in block 1, 0.9 in block 2: 0.25 + 0.18.
    # Sold: 1.6 in block 1 at 0.05 = 0.08.
    assert result.energy[0, 0] == pytest.approx(0.43)
    assert result.export_credit[0, 0] == pytest.approx(0.08)


def test_buy_all_sell_all_by_hand() -> None:
    tariff = Tariff.model_validate(
        {
            "name": "buy all sell all",
            "billing": {"prorate": False},
            "energy": {
                "periods": [
                    {
                        "name": "all",
                        "tiers": [
                            {"max": 10, "rate": 0.14, "sell": 0.06},
                            {"rate": 0.20, "sell": 0.04},
                        ],
                    }
                ]
            },
            "export": {"mode": "buy_all_sell_all"},
        }
    )
    ends = np.datetime64("2024-03-05T00:00") + np.arange(1, 25) * HOUR
    consumption = np.ones(24)
    generation = np.where((np.arange(24) >= 8) & (np.arange(24) < 16), 2.0, 0.0)
    result = rate(tariff, ends, consumption[None], generation[None])
    # all 24 kWh bought: 10 x 0.14 + 14 x 0.20 = 4.20; all 16 kWh sold in time order:
    # 10 x 0.06 + 6 x 0.04 = 0.84
    assert result.energy[0, 0] == pytest.approx(4.20)
    assert result.export_credit[0, 0] == pytest.approx(0.84)
    assert result.total[0, 0] == pytest.approx(3.36)
    # netted each interval instead, the same meter buys 16 and sells 8 kWh:
    netted = tariff.model_copy(
        update={"export": tariff.export.model_copy(update={"mode": "net_billing_instantaneous"})}
    )
    net = consumption - generation
    other = rate(netted, ends, np.maximum(net, 0)[None], np.maximum(-net, 0)[None])
    assert other.energy[0, 0] == pytest.approx(10 * 0.14 + 6 * 0.20)
    assert other.export_credit[0, 0] == pytest.approx(8 * 0.06)
