"""Read OpenEI URDB rate objects (JSON, API version 7/8) into a :class:`Tariff`.

Every field PySAM's converter ``UtilityRateTools.URDBv8_to_ElectricityRates`` reads is read
here [1]_: the energy and demand schedules and rate structures (``rate`` + ``adj``, ``max``,
``sell``, ``unit``), ``flatdemandstructure``/``flatdemandmonths``, ``dgrules``,
``fixedchargefirstmeter``/``fixedchargeunits``, ``mincharge``/``minchargeunits`` and the
ratchet fields ``lookbackpercent``, ``lookbackrange``, ``lookbackmonths``. Also read:
``fixedmonthlycharge`` (older records; PySAM's converter ignores it), ``demandwindow``,
``name``, ``utility``, ``sector``, ``uri``, ``description``.

References
----------
.. [1] OpenEI, "U.S. Utility Rate Database API, version 8",
   https://openei.org/services/doc/rest/util_rates/?version=8 ; PySAM
   ``files/UtilityRateTools.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from meterstack.tariff.errors import TariffError
from meterstack.tariff.model import Tariff

__all__ = ["DGRULES", "load_urdb", "tariff_from_urdb"]

DGRULES = {
    "Net Metering": "net_metering_kwh",
    "Net Billing Instantaneous": "net_billing_instantaneous",
    "Net Billing Hourly": "net_billing_hourly",
    "Buy All Sell All": "buy_all_sell_all",
}
_ENERGY_UNITS = {
    "kwh": "kWh",
    "kwh/kw": "kWh/kW",
    "kwh daily": "kWh/day",
    "kwh/kw daily": "kWh/kW/day",
}
_WINDOWS = (5, 10, 15, 30, 60)


def _energy_periods(structure: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    periods = []
    for i, tiers in enumerate(structure):
        out = []
        for j, entry in enumerate(tiers):
            unit_text = str(entry.get("unit", "kWh")).lower()
            if unit_text not in _ENERGY_UNITS:
                raise TariffError(
                    f"energyratestructure[{i}][{j}].unit", entry.get("unit"), "unknown unit"
                )
            tier: dict[str, Any] = {
                "rate": float(entry.get("rate", 0.0)) + float(entry.get("adj", 0.0)),
                "unit": _ENERGY_UNITS[unit_text],
            }
            if entry.get("max") is not None and float(entry["max"]) < 1e37:
                tier["max"] = float(entry["max"])
            if "sell" in entry:
                tier["sell"] = float(entry["sell"])
            out.append(tier)
        periods.append({"name": f"period_{i + 1}", "tiers": out})
    return periods


def _demand_periods(structure: list[list[dict[str, Any]]], field: str) -> list[dict[str, Any]]:
    periods = []
    for i, tiers in enumerate(structure):
        out = []
        for j, entry in enumerate(tiers):
            unit = str(entry.get("unit", "kW"))
            if unit.lower() != "kw":
                raise TariffError(f"{field}[{i}][{j}].unit", unit, "only kW demand is supported")
            tier: dict[str, Any] = {
                "rate": float(entry.get("rate", 0.0)) + float(entry.get("adj", 0.0))
            }
            if entry.get("max") is not None and float(entry["max"]) < 1e37:
                tier["max"] = float(entry["max"])
            out.append(tier)
        periods.append({"name": f"{field}_{i + 1}", "tiers": out})
    return periods


def tariff_from_urdb(rate: dict[str, Any], timezone: str = "UTC") -> Tariff:
    """Build a tariff from one URDB rate object.

    Parameters
    ----------
    rate : dict
        A URDB rate object (one item of the API's ``items``).
    timezone : str
        IANA zone of the utility (URDB does not record it).

    Raises
    ------
    TariffError
        A field is missing or has a value the model rejects; the message names it.
    """
    if not isinstance(rate, dict):
        raise TariffError("urdb", type(rate).__name__, "expected one rate object (a JSON object)")
    if "energyratestructure" not in rate:
        raise TariffError("energyratestructure", None, "URDB rate has no energy rates")
    doc: dict[str, Any] = {
        "name": str(rate.get("name", rate.get("label", "URDB rate"))),
        "description": str(rate.get("description", ""))[:2000],
        "utility": str(rate.get("utility", "")),
        "sector": str(rate.get("sector", "")),
        "source": str(rate.get("uri", rate.get("label", ""))),
        "currency": "USD",
        "timezone": timezone,
        "energy": {
            "periods": _energy_periods(rate["energyratestructure"]),
            "schedule": {
                "weekday": rate.get("energyweekdayschedule"),
                "weekend": rate.get("energyweekendschedule", rate.get("energyweekdayschedule")),
            },
        },
    }
    fixed = []
    if "fixedchargefirstmeter" in rate:
        units = rate.get("fixedchargeunits", "$/month")
        amount = float(rate["fixedchargefirstmeter"])
        if units == "$/day":
            fixed.append({"name": "customer charge", "amount": amount, "per": "day"})
        elif units == "$/year":
            fixed.append({"name": "customer charge", "amount": amount / 12, "per": "month"})
        elif units == "$/month":
            fixed.append({"name": "customer charge", "amount": amount, "per": "month"})
        else:
            raise TariffError("fixedchargeunits", units, "expected $/day, $/month or $/year")
    elif "fixedmonthlycharge" in rate:
        fixed.append(
            {"name": "customer charge", "amount": float(rate["fixedmonthlycharge"]), "per": "month"}
        )
    doc["fixed"] = fixed
    if "mincharge" in rate:
        units = rate.get("minchargeunits", "$/month")
        amount = float(rate["mincharge"])
        if units == "$/year":
            doc["minimum"] = {"annual": amount}
        elif units in ("$/month", "$/day"):
            doc["minimum"] = {"monthly": amount * (365 / 12 if units == "$/day" else 1)}
        else:
            raise TariffError("minchargeunits", units, "expected $/day, $/month or $/year")
    if "dgrules" in rate:
        if rate["dgrules"] not in DGRULES:
            raise TariffError("dgrules", rate["dgrules"], f"expected one of {sorted(DGRULES)}")
        doc["export"] = {"mode": DGRULES[rate["dgrules"]]}
    else:
        doc["export"] = {"mode": "net_metering_kwh"}
    demand: dict[str, Any] = {}
    if "demandratestructure" in rate:
        demand["periods"] = _demand_periods(rate["demandratestructure"], "demandratestructure")
        demand["schedule"] = {
            "weekday": rate.get("demandweekdayschedule"),
            "weekend": rate.get("demandweekendschedule", rate.get("demandweekdayschedule")),
        }
    if "flatdemandstructure" in rate:
        demand["flat"] = _demand_periods(rate["flatdemandstructure"], "flatdemandstructure")
        demand["flat_months"] = rate.get("flatdemandmonths", [0] * 12)
    if demand:
        window = int(rate.get("demandwindow", 15))
        if window not in _WINDOWS:
            raise TariffError("demandwindow", window, f"expected one of {_WINDOWS} minutes")
        demand["window_min"] = window
        if "lookbackpercent" in rate and float(rate["lookbackpercent"]) > 0:
            months = rate.get("lookbackmonths", [True] * 12)
            demand["ratchet"] = {
                "percent": float(rate["lookbackpercent"]) * 100,
                "months": int(rate.get("lookbackrange", 11)) or 11,
                "apply_months": [i + 1 for i, on in enumerate(months) if on],
            }
        doc["demand"] = demand
    try:
        return Tariff.model_validate(doc)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "urdb"
        raise TariffError(where, err.get("input"), err["msg"]) from exc


def load_urdb(path: str | Path, timezone: str = "UTC") -> Tariff:
    """Read a URDB JSON file: one rate object, or an API response with ``items``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
        obj = json.loads(text)
    except OSError as exc:
        raise TariffError(str(p), None, f"cannot read: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise TariffError(f"{p}:{exc.lineno}", None, f"not valid JSON: {exc.msg}") from exc
    if isinstance(obj, dict) and "items" in obj:
        items = obj["items"]
        if not items:
            raise TariffError(f"{p}.items", [], "the response holds no rate")
        obj = items[0]
    return tariff_from_urdb(obj, timezone)
