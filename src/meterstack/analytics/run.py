"""One analytics run over a period: outages, theft and losses, power quality, in one report.

:func:`analyse` takes the arrays the analyses read (from the meter data store through
:mod:`meterstack.analytics.from_store`, or from the simulator) and runs them all with the
library's defaults; :meth:`GridReport.to_dict` is the JSON-able summary the REST API, the
command line and the dashboard show. Pure: no I/O, no clock.

A period shorter than the analyses need is not an error: a theft search needs one day of
data (its windows shrink to the period below a week), the EN 50160 statistics one complete
week; what could not run is said in ``notes``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from meterstack.analytics.compliance import (
    WEEK_S,
    TransformerLoading,
    VoltageCompliance,
    transformer_loading,
    voltage_compliance,
)
from meterstack.analytics.losses import EnergyBalance, TechnicalLossModel, energy_balance
from meterstack.analytics.network import NetworkModel
from meterstack.analytics.outages import OutageReport, PowerEvents, find_outages
from meterstack.analytics.theft import InspectionList, detect_theft
from meterstack.core.errors import InvalidInputError

__all__ = ["GridReport", "analyse", "iso_utc"]

Float32Array = npt.NDArray[np.float32]
FloatArray = npt.NDArray[np.float64]


def iso_utc(seconds: float) -> str:
    """POSIX seconds as ISO 8601 UTC with a ``Z``, to the second."""
    return datetime.fromtimestamp(round(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _num(value: float, digits: int = 4) -> float | None:
    """A JSON number: NaN and infinities become None."""
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None


@dataclass(frozen=True)
class GridReport:
    """What one run found; :meth:`to_dict` is its summary."""

    network: NetworkModel
    interval_s: int
    start: float  # [s since the epoch] the period's first interval starts here
    as_of: float  # [s] the period's end and the time of the analysis
    outages: OutageReport
    balance: EnergyBalance
    inspection: InspectionList | None
    voltage: VoltageCompliance | None
    loading: TransformerLoading
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able summary (times ISO 8601 UTC, energies kWh, NaN as null)."""
        network = self.network
        indices = self.outages.indices
        return {
            "period": {
                "start": iso_utc(self.start),
                "end": iso_utc(self.as_of),
                "interval_s": self.interval_s,
            },
            "network": {
                "meters": network.n_meters,
                "transformers": network.n_transformers,
                "feeders": len(network.feeders),
                "check_meters": sum(c is not None for c in network.check_meters),
            },
            "indices": {
                "customers_served": indices.customers_served,
                "saifi": _num(indices.saifi, 6),
                "saidi_min": _num(indices.saidi_min, 3),
                "caidi_min": _num(indices.caidi_min, 3),
                "maifi": _num(indices.maifi, 6),
                "sustained_interruptions": indices.sustained_interruptions,
                "momentary_interruptions": indices.momentary_interruptions,
            },
            "events": {
                "used": self.outages.events_used,
                "repeated": self.outages.events_repeated,
                "orphan_restores": sorted(
                    {network.meters[i] for i in self.outages.orphan_restores.tolist()}
                ),
            },
            "outages": self._outages(),
            "inspection": self._inspection(),
            "pq": {
                "interval_s": self.interval_s,
                "nominal_v": self.voltage.nominal_v if self.voltage is not None else None,
                "weeks": int(self.voltage.compliant.shape[1]) if self.voltage is not None else 0,
                "non_compliant": self._non_compliant(),
                "overloaded": self._overloaded(),
            },
            "energy_balance": self._balance(),
            "notes": list(self.notes),
        }

    def _outages(self) -> list[dict[str, Any]]:
        network = self.network
        return [
            {
                "id": o.id,
                "level": o.level.value,
                "transformer": network.transformers[o.transformer],
                "feeder": network.feeders[o.feeder],
                "start": iso_utc(o.start),
                "end": None if o.open else iso_utc(o.end),
                "customers": o.customers,
                "customer_minutes": _num(o.customer_minutes, 1),
                "feeder_event": o.feeder_event,
                "open": o.open,
            }
            for o in self.outages.outages
        ]

    def _inspection(self) -> list[dict[str, Any]]:
        if self.inspection is None:
            return []
        return [
            {
                "rank": rank,
                "serial": s.serial,
                "transformer": s.transformer,
                "score": _num(s.score, 3),
                "stolen_share": _num(s.stolen_share, 3),
                "stolen_kwh": _num(s.stolen_wh / 1000.0, 1),
                "fraud_events": dict(s.fraud_events),
                "consumption_drop": _num(s.consumption_drop, 3),
                "flat_line_h": _num(s.flat_line_h, 1),
                "reasons": list(s.reasons),
            }
            for rank, s in enumerate(self.inspection.suspects, start=1)
        ]

    def _non_compliant(self) -> list[dict[str, Any]]:
        voltage = self.voltage
        if voltage is None:
            return []
        network = self.network
        out = []
        for i in voltage.non_compliant_meters.tolist():
            failed = ~voltage.compliant[i] & (voltage.valid[i] > 0)
            shares = np.where(failed, voltage.within_10_pct[i], np.inf)
            week = int(np.argmin(shares))
            out.append(
                {
                    "serial": network.meters[i],
                    "transformer": network.transformers[network.meter_transformer[i]],
                    "weeks_failed": int(failed.sum()),
                    "worst_week": week,
                    "worst_week_start": iso_utc(self.start + week * WEEK_S),
                    "within_10_pct": _num(voltage.within_10_pct[i, week]),
                    "min_v": _num(voltage.min_v[i, week], 1),
                    "max_v": _num(voltage.max_v[i, week], 1),
                }
            )
        out.sort(key=lambda row: (row["within_10_pct"] or 0.0, row["serial"]))
        return out

    def _overloaded(self) -> list[dict[str, Any]]:
        network, loading = self.network, self.loading
        rows = [
            {
                "transformer": network.transformers[t],
                "feeder": network.feeders[network.transformer_feeder[t]],
                "rating_kva": _num(network.rating_kva[t], 1),
                "peak_pct": _num(loading.peak_pct[t], 1),
                "hours_over": _num(loading.hours_over[t], 2),
            }
            for t in np.flatnonzero(loading.overloaded).tolist()
        ]
        rows.sort(key=lambda row: -(row["peak_pct"] or 0.0))
        return rows

    def _balance(self) -> list[dict[str, Any]]:
        network, balance = self.network, self.balance
        share = balance.ntl_share

        def kwh(array: Float32Array) -> FloatArray:
            return np.asarray(np.nansum(array, axis=1, dtype=np.float64) / 1000.0)

        customers = network.customers_per_transformer()

        delivered, billed = kwh(balance.delivered_wh), kwh(balance.billed_wh)
        technical, ntl = kwh(balance.technical_wh), kwh(balance.non_technical_wh)
        rows = [
            {
                "transformer": network.transformers[t],
                "check_meter": network.check_meters[t],
                "customers": int(customers[t]),
                "delivered_kwh": _num(delivered[t], 1),
                "billed_kwh": _num(billed[t], 1),
                "technical_kwh": _num(technical[t], 1),
                "non_technical_kwh": _num(ntl[t], 1),
                "ntl_share": _num(share[t]),
            }
            for t in np.flatnonzero(balance.has_check_meter).tolist()
        ]
        rows.sort(key=lambda row: (-float(row["ntl_share"] or 0.0), str(row["transformer"])))
        return rows


def _shape(name: str, array: np.ndarray, shape: tuple[int, int]) -> None:
    if array.shape != shape:
        raise InvalidInputError(name, array.shape, f"must have shape {shape}")


def interrupted_intervals(
    outages: OutageReport,
    voltage_v: npt.NDArray[np.floating[Any]],
    *,
    start: float,
    interval_s: int,
    nominal_v: float,
) -> npt.NDArray[np.bool_]:
    """Intervals to leave out of the EN 50160 statistics: those that overlap an outage of
    the meter (from ``outages``), and those whose mean voltage is below 10 % of nominal
    (an interruption, IEC 61000-4-30 5.5.4, that no last gasp reported)."""
    flagged = np.asarray(voltage_v < 0.1 * nominal_v)
    n_int = voltage_v.shape[1]
    for outage in outages.outages:
        stop = start + n_int * interval_s if outage.open else outage.end
        first = max(int((outage.start - start) // interval_s), 0)
        last = min(int(np.ceil((stop - start) / interval_s)), n_int)
        if first < last:
            flagged[np.concatenate([outage.meters, outage.inferred]), first:last] = True
    return flagged


def analyse(
    network: NetworkModel,
    *,
    interval_s: int,
    customer_wh: Float32Array,
    export_wh: Float32Array | None,
    check_wh: Float32Array,
    voltage_v: Float32Array | None,
    power_events: PowerEvents,
    last_heard: FloatArray | None,
    as_of: float,
    fraud_events: Mapping[str, npt.NDArray[np.integer]] | None = None,
    start: float | None = None,
    nominal_v: float = 230.0,
    losses: TechnicalLossModel | None = None,
) -> GridReport:
    """Run the outage, theft and power-quality analyses on one period.

    Parameters
    ----------
    customer_wh, export_wh : float32 array (n_meters, T)
        A+ and A- of the customers' meters per interval, NaN where missing. [Wh]
    check_wh : float32 array (n_transformers, T)
        The check meters' net energy, NaN rows where a transformer has none. [Wh]
    voltage_v : float32 array (n_meters, T), optional
        Average voltage per interval. [V]
    power_events, last_heard, as_of
        As :func:`~meterstack.analytics.find_outages` takes them; ``as_of`` is also the
        end of the period. [s since the epoch]
    fraud_events : mapping of kind to counts per meter, optional
    start : float, optional
        Start of the first interval (default ``as_of - T * interval_s``). [s]
    """
    if interval_s <= 0 or 86400 % interval_s:
        raise InvalidInputError("interval_s", interval_s, "must divide a day")
    if customer_wh.ndim != 2:
        raise InvalidInputError("customer_wh", customer_wh.shape, "must be (n_meters, T)")
    n_int = customer_wh.shape[1]
    meters = (network.n_meters, n_int)
    _shape("customer_wh", customer_wh, meters)
    _shape("check_wh", check_wh, (network.n_transformers, n_int))
    if export_wh is not None:
        _shape("export_wh", export_wh, meters)
    if voltage_v is not None:
        _shape("voltage_v", voltage_v, meters)
    if not math.isfinite(as_of):
        raise InvalidInputError("as_of", as_of, "must be finite")
    first = as_of - n_int * interval_s if start is None else float(start)
    notes: list[str] = []

    outages = find_outages(network, power_events, as_of=as_of, last_heard=last_heard)
    balance = energy_balance(
        network, customer_wh, check_wh, interval_s, losses, customer_export_wh=export_wh
    )

    per_day = 86400 // interval_s
    days = n_int // per_day
    inspection: InspectionList | None = None
    if days >= 1:
        window = min(7, days)
        if window < 7:
            notes.append(f"theft: {days} day(s) of data, regressed in {window}-day windows")
        inspection = detect_theft(
            network,
            customer_wh,
            balance,
            interval_s,
            fraud_events=fraud_events,
            window_days=window,
        )
    else:
        notes.append("theft: less than one day of data, no inspection list")

    voltage: VoltageCompliance | None = None
    if voltage_v is None:
        notes.append("power quality: no voltage data")
    elif WEEK_S % interval_s == 0 and n_int >= WEEK_S // interval_s:
        flagged = interrupted_intervals(
            outages, voltage_v, start=first, interval_s=interval_s, nominal_v=nominal_v
        )
        voltage = voltage_compliance(voltage_v, interval_s, nominal_v, flagged=flagged)
    else:
        notes.append("power quality: EN 50160 statistics need one complete week of data")

    # Loading: the check meter where there is one, else the customers' net sum plus losses.
    model = losses or TechnicalLossModel()
    billed = np.nan_to_num(balance.billed_wh, nan=0.0)
    estimated = billed + model.losses_wh(
        np.maximum(billed, 0.0),
        network.customers_per_transformer(),
        network.rating_kva,
        interval_s,
    )
    delivered = np.where(balance.has_check_meter[:, None], check_wh, estimated)
    loading = transformer_loading(network, delivered.astype(np.float32), interval_s)
    return GridReport(
        network=network,
        interval_s=interval_s,
        start=first,
        as_of=as_of,
        outages=outages,
        balance=balance,
        inspection=inspection,
        voltage=voltage,
        loading=loading,
        notes=notes,
    )
