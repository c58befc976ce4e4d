"""Cross-check: monthly bills in PySAM-compatible mode equal NREL PySAM's to the cent.

PySAM (``nrel-pysam``, Utilityrate5) is run in the test on the same URDB file (through its
own converter ``UtilityRateTools.URDBv8_to_ElectricityRates``) and the same synthetic loads.
"""

from __future__ import annotations

import copy
import json
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from tariff_data import urdb_files

from meterstack.tariff.pysam_compat import rate_pysam
from meterstack.tariff.urdb import tariff_from_urdb

ur5 = pytest.importorskip("PySAM.Utilityrate5")
urt = pytest.importorskip("PySAM.UtilityRateTools")

FILES = urdb_files()
STEPS = {"hourly": 1, "30min": 2, "15min": 4}
YEAREND_SELL = 0.031


def _with_sell_rates(rate: dict) -> dict:
    """The same rate with an export price on every energy tier (half the buy price)."""
    out = copy.deepcopy(rate)
    for tiers in out["energyratestructure"]:
        for tier in tiers:
            tier.setdefault("sell", round(0.5 * (tier.get("rate", 0) + tier.get("adj", 0)), 5))
    return out


def _profiles(steps: int, seed: int, scale: float, solar: float) -> tuple[np.ndarray, np.ndarray]:
    """Load and PV power [kW] per record, exact in float32 (multiples of 1/64 kW)."""
    rng = np.random.default_rng(seed)
    n = 8760 * steps
    hour = (np.arange(n) / steps) % 24
    day = np.arange(n) // (24 * steps)
    base = 0.5 + 0.4 * np.sin((hour - 7) / 24 * 2 * np.pi) + 0.2 * np.cos(day / 365 * 2 * np.pi)
    load = scale * np.maximum(base + 0.25 * rng.standard_normal(n), 0.05)
    sun = np.clip(np.sin((hour - 6) / 12 * np.pi), 0, None) * (1 + 0.3 * np.sin(day / 58))
    gen = solar * scale * sun
    return np.round(load * 64) / 64, np.round(gen * 64) / 64


def _pysam_bills(rate: dict, load_kw, gen_kw, option: int) -> dict[str, np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rates = urt.URDBv8_to_ElectricityRates(copy.deepcopy(rate))
    if "fixedmonthlycharge" in rate and "fixedchargefirstmeter" not in rate:
        # PySAM can represent this charge but its converter does not read the older field.
        rates["ur_monthly_fixed_charge"] = rate["fixedmonthlycharge"]
    model = ur5.new()
    model.ElectricityRates.assign(rates)
    model.ElectricityRates.ur_metering_option = option
    model.ElectricityRates.ur_nm_yearend_sell_rate = YEAREND_SELL
    model.ElectricityRates.ur_nm_credit_month = 11
    model.ElectricityRates.ur_nm_credit_rollover = 0
    model.ElectricityRates.ur_nb_credit_expire = 0
    model.ElectricityRates.ur_nb_apply_credit_current_month = 0
    model.ElectricityRates.ur_sell_eq_buy = 0
    model.ElectricityRates.rate_escalation = [0]
    model.Lifetime.analysis_period = 1
    model.Lifetime.system_use_lifetime_output = 0
    model.Lifetime.inflation_rate = 0
    model.SystemOutput.degradation = [0]
    model.Load.load = list(map(float, load_kw))
    model.SystemOutput.gen = list(map(float, gen_kw))
    model.execute()
    out = model.Outputs
    ym = {
        k: np.array(getattr(out, k))[1]
        for k in (
            "utility_bill_w_sys_ym",
            "charge_w_sys_ec_ym",
            "charge_w_sys_dc_fixed_ym",
            "charge_w_sys_dc_tou_ym",
            "charge_w_sys_fixed_ym",
            "charge_w_sys_minimum_ym",
        )
    }
    return {
        "total": ym["utility_bill_w_sys_ym"],
        "energy": ym["charge_w_sys_ec_ym"],
        "demand": ym["charge_w_sys_dc_fixed_ym"] + ym["charge_w_sys_dc_tou_ym"],
        "fixed": ym["charge_w_sys_fixed_ym"],
        "minimum": ym["charge_w_sys_minimum_ym"],
    }


def _assert_cents(ours: np.ndarray, theirs: np.ndarray, what: str) -> None:
    """Equal when rounded to cents (float32 noise in PySAM at a half-cent edge excepted)."""
    a = np.round(np.asarray(ours, float) * 100)
    b = np.round(np.asarray(theirs, float) * 100)
    cents = np.asarray(theirs, float) * 100
    edge = np.abs(cents % 1 - 0.5) < np.maximum(1e-3, 1e-6 * np.abs(cents))
    bad = (a != b) & ~edge
    assert np.abs(a - b).max(initial=0) <= 1, f"{what}: off by more than a cent"
    assert not bad.any(), f"{what}: ours {np.asarray(ours)[bad]} vs PySAM {np.asarray(theirs)[bad]}"


CASES = []
for _f in FILES:
    for _step in STEPS:
        CASES.append(pytest.param(_f, _step, 0, 0.0, id=f"{_f.stem}-{_step}-nosolar"))
    for _opt in range(5):
        CASES.append(pytest.param(_f, "hourly", _opt, 1.6, id=f"{_f.stem}-hourly-solar-opt{_opt}"))
for _opt in range(5):
    CASES.append(
        pytest.param(FILES[0] if FILES else None, "15min", _opt, 1.6, id=f"15min-solar-opt{_opt}")
    )


@pytest.mark.skipif(not FILES, reason="shared URDB data not found")
@pytest.mark.parametrize(("path", "step", "option", "solar"), CASES)
def test_monthly_charges_equal_pysam(path: Path, step: str, option: int, solar: float) -> None:
    rate = json.loads(path.read_text())
    if solar:
        rate = _with_sell_rates(rate)
    steps = STEPS[step]
    scale = 40.0 if "demandratestructure" in rate or "flatdemandstructure" in rate else 1.2
    # crc32, not hash(): str hashes change from one process to the next (PYTHONHASHSEED)
    seed = zlib.crc32(path.stem.encode()) % 1000 + option
    load_kw, gen_kw = _profiles(steps, seed, scale, solar)
    theirs = _pysam_bills(rate, load_kw, gen_kw, option)
    tariff = tariff_from_urdb(rate)
    tariff = tariff.model_copy(
        update={"export": tariff.export.model_copy(update={"yearend_sell_rate": YEAREND_SELL})}
    )
    h = 1.0 / steps
    if option == 4:
        load_kwh, gen_kwh = load_kw * h, gen_kw * h
    else:
        net = (gen_kw - load_kw) * h
        load_kwh, gen_kwh = np.maximum(-net, 0), np.maximum(net, 0)
    ours = rate_pysam(tariff, load_kwh[None], gen_kwh[None], metering_option=option)
    for name in ("fixed", "energy", "demand", "minimum", "total"):
        _assert_cents(getattr(ours, name)[0], theirs[name], f"{path.stem} {name}")
