"""The full analysis of one waveform record, window by window, vectorised.

:func:`analyze` runs the pipeline:

1. zero crossings of the filtered reference voltage and the 10/12-cycle windows,
   resynchronised at every 10-min UTC tick (:mod:`~meterstack.metrology.windows`);
2. one ``rfft`` per window over all channels, weighted by the measurement band (DC
   removal, EMI/alias band removed) and reduced to a Gram matrix, the harmonic and
   interharmonic groupings and the fundamental phasors (:mod:`~meterstack.metrology.spectra`);
3. RMS values, IEEE 1459 quantities, harmonic groups and subgroups, interharmonic groups,
   THD, unbalance (IEC and NEMA), per window;
4. frequency over 10-s intervals; Urms(1/2), dips, swells and interruptions, and the
   flag of every window that overlaps one.

No Python loop runs per window: loops run only per distinct window length and per event.
The result holds arrays shaped (phases, windows[, orders]); :func:`summarize` reduces them
to one value per quantity for the whole record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from meterstack.metrology.aggregation import Aggregation, mean_aggregate, rms_aggregate
from meterstack.metrology.energy import (
    FourQuadrantEnergy,
    RangeSwitchingCt,
    four_quadrant_energy,
)
from meterstack.metrology.events import (
    EventThresholds,
    VoltageEvent,
    detect_events,
    half_cycle_rms,
    overlaps_events,
)
from meterstack.metrology.filters import MeasurementBand, default_band, reference_lowpass
from meterstack.metrology.harmonics import thd_f, thd_r
from meterstack.metrology.power import PhasePower, ThreePhasePower, phase_power, three_phase_power
from meterstack.metrology.record import FloatArray, WaveformError, WaveformRecord
from meterstack.metrology.spectra import available_harmonics, window_spectra
from meterstack.metrology.unbalance import unbalance_iec, unbalance_nema
from meterstack.metrology.windows import (
    BoolArray,
    Framing,
    fill_gaps,
    frame_windows,
    frequency_10s,
    half_cycle_boundaries,
    positive_zero_crossings,
)

__all__ = ["Analysis", "analyze", "summarize"]

#: Half-width of the zero-crossing trigger band, in % of the declared peak voltage.
CROSSING_HYSTERESIS_PCT = 5.0
#: Rate to which the reference voltage is block-averaged before its zero crossings. [Hz]
DECIMATED_RATE_HZ = 2000.0
#: Nominal cycles at the start of a record in which the reference filter settles.
SETTLING_CYCLES = 3
#: Harmonic orders reported by :func:`summarize`.
REPORTED_ORDERS = 50


@dataclass(frozen=True, slots=True, eq=False)
class Analysis:
    """Everything measured in one record. Per-phase arrays have the phase axis first.

    Attributes
    ----------
    record : WaveformRecord
        The input.
    framing : Framing
        The synchronised windows.
    declared_voltage_v : float
        U_din used for events (given, or the median 10/12-cycle RMS voltage). [V]
    window_start, window_end : array, shape (windows,)
        POSIX times of each window's first sample and of its end. [s]
    window_duration_s : array, shape (windows,)
        Time each window stands for in energy sums (its span not covered by the next). [s]
    window_frequency_hz : array, shape (windows,)
        N / (exact window length). [Hz]
    vrms, irms : array, shape (phases, windows)
        RMS voltage and current within the measurement band. [V, A]
    power : PhasePower or None
        IEEE 1459 single-phase quantities, shape (phases, windows).
    total : ThreePhasePower or None
        IEEE 1459 three-phase quantities, shape (windows,); three-phase records with
        current only.
    harmonics_v, subgroups_v : array, shape (phases, windows, H)
        Harmonic groups and subgroups, orders 1 .. H. [V]
    interharmonics_v : array, shape (phases, windows, H + 1)
        Interharmonic groups between orders n and n+1, n = 0 .. H. [V]
    harmonics_i, subgroups_i, interharmonics_i : array or None
        The same for the currents. [A]
    thd_f_v, thd_r_v, thd_f_i, thd_r_i : array, shape (phases, windows)
        THD relative to the fundamental / to the RMS value, from harmonic groups. [%]
    unbalance_iec_pct, unbalance_nema_pct : array, shape (windows,), or None
        Voltage unbalance, three-phase records only. [%]
    frequency_end, frequency_hz : array
        10-s frequency values and the POSIX end of their intervals. [s, Hz]
    urms_half_time, urms_half : array
        Urms(1/2) values (phases, values) and their times. [s, V]
    events : list of VoltageEvent
        Dips, swells and interruptions.
    flagged : bool array, shape (windows,)
        Windows that overlap an event.
    over_range : bool array or None
        Windows whose current exceeded the wide-range input's rating (with ``ct``).
    harmonic_orders : int
        H, the highest harmonic order measured.
    """

    record: WaveformRecord
    framing: Framing
    declared_voltage_v: float
    window_start: FloatArray
    window_end: FloatArray
    window_duration_s: FloatArray
    window_frequency_hz: FloatArray
    vrms: FloatArray
    irms: FloatArray | None
    power: PhasePower | None
    total: ThreePhasePower | None
    harmonics_v: FloatArray
    subgroups_v: FloatArray
    interharmonics_v: FloatArray
    harmonics_i: FloatArray | None
    subgroups_i: FloatArray | None
    interharmonics_i: FloatArray | None
    thd_f_v: FloatArray
    thd_r_v: FloatArray
    thd_f_i: FloatArray | None
    thd_r_i: FloatArray | None
    unbalance_iec_pct: FloatArray | None
    unbalance_nema_pct: FloatArray | None
    frequency_end: FloatArray
    frequency_hz: FloatArray
    urms_half_time: FloatArray
    urms_half: FloatArray
    events: list[VoltageEvent]
    flagged: BoolArray
    over_range: BoolArray | None
    harmonic_orders: int

    @property
    def windows(self) -> int:
        return self.framing.count

    def total_p_w(self) -> FloatArray:
        """Total active power of each window. [W]"""
        if self.power is None:
            return np.zeros(self.windows)
        result: FloatArray = self.power.p.sum(axis=0)
        return result

    def total_q1_var(self) -> FloatArray:
        """Total fundamental reactive power of each window. [var]"""
        if self.power is None:
            return np.zeros(self.windows)
        result: FloatArray = self.power.q1.sum(axis=0)
        return result

    def energy(self, no_load_current_a: float = 0.0) -> FourQuadrantEnergy:
        """Four-quadrant energy of the record, with windows below ``no_load_current_a``
        on every phase booked as zero (the meter's anti-creep threshold). [Wh, varh]"""
        p = self.total_p_w()
        q = self.total_q1_var()
        if self.irms is not None and no_load_current_a > 0:
            idle = np.all(self.irms < no_load_current_a, axis=0)
            p = np.where(idle, 0.0, p)
            q = np.where(idle, 0.0, q)
        return four_quadrant_energy(p, q, self.window_duration_s)


def _reference_crossings(
    record: WaveformRecord, level_v: float | None
) -> tuple[FloatArray, BoolArray]:
    """Zero crossings of the first phase voltage, in samples of the record.

    The reference is first averaged over blocks of m samples (m = fs // 2 kHz), which
    decimates it to about 2 kHz: the block mean has a zero at every multiple of fs/m, so
    no harmonic aliases onto the fundamental by more than a few per mille of its own size,
    and the fundamental filter then runs on a quarter of the samples. The block mean delays
    the signal by (m - 1)/2 samples; that is added back.
    """
    fs = record.fs_hz
    factor = max(1, int(fs // DECIMATED_RATE_HZ))
    usable = record.samples - record.samples % factor
    decimated = record.voltage_v[0, :usable].reshape(-1, factor) @ np.full(factor, 1.0 / factor)
    reference = reference_lowpass(decimated, fs / factor, record.f0_hz)
    if level_v is None:
        level_v = float(np.sqrt(np.dot(reference, reference) / reference.size))
    hysteresis = CROSSING_HYSTERESIS_PCT / 100.0 * np.sqrt(2.0) * level_v
    crossings = positive_zero_crossings(reference, hysteresis) * factor + (factor - 1) / 2.0
    # The fundamental filter settles within a few cycles; earlier crossings are dropped.
    period = fs / record.f0_hz
    settle = SETTLING_CYCLES * period
    crossings = crossings[crossings >= settle]
    return fill_gaps(crossings, period, record.samples, head_start=settle)


def analyze(
    record: WaveformRecord,
    *,
    declared_voltage_v: float | None = None,
    thresholds: EventThresholds | None = None,
    ct: RangeSwitchingCt | None = None,
    harmonics: int = REPORTED_ORDERS,
    band: MeasurementBand | None = None,
) -> Analysis:
    """Measure everything in ``record`` (module docstring).

    Parameters
    ----------
    record : WaveformRecord
        Validated samples.
    declared_voltage_v : float, optional
        U_din for events; by default the median 10/12-cycle RMS voltage. [V]
    thresholds : EventThresholds, optional
        Dip, swell and interruption thresholds (IEC 61000-4-30 defaults).
    ct : RangeSwitchingCt, optional
        Wide-range current input whose ratio error is applied to the current channels.
    harmonics : int
        Highest harmonic order to measure (reduced where the sampling rate cannot hold it).
    band : MeasurementBand, optional
        The measurement band; :func:`~meterstack.metrology.filters.default_band` by default.

    Raises
    ------
    WaveformError
        No complete synchronised window fits in the record, or a parameter is invalid.
    """
    if declared_voltage_v is not None and (
        not np.isfinite(declared_voltage_v) or declared_voltage_v <= 0
    ):
        raise WaveformError(
            "declared_voltage_v", declared_voltage_v, "the declared voltage must be positive"
        )
    if not 1 <= harmonics <= 100:
        raise WaveformError("harmonics", harmonics, "between 1 and 100")
    fs = record.fs_hz
    f0 = record.f0_hz
    phases = record.phases
    start_epoch = record.start_epoch
    crossings, real = _reference_crossings(record, declared_voltage_v)
    framing = frame_windows(
        crossings, real, record.samples, fs_hz=fs, f0_hz=f0, start_epoch=start_epoch
    )
    if framing.count == 0:
        raise WaveformError(
            "samples",
            record.samples,
            f"the record is shorter than one synchronised {framing.cycles}-cycle window",
        )
    band = band or default_band(fs, f0, harmonics)
    orders = available_harmonics(fs, f0, framing.cycles, band, harmonics)
    has_current = record.current_a is not None
    spectra = window_spectra(record.channels, framing, fs, band, orders)
    gram = spectra.gram
    v_index = np.arange(phases)
    diag = np.einsum("wcc->cw", gram)
    vrms = np.sqrt(np.maximum(diag[:phases], 0.0))
    v1 = spectra.fundamental[:, :phases].T
    cycles = framing.cycles

    harmonics_v = spectra.harmonic_groups[:phases]
    subgroups_v = spectra.harmonic_subgroups[:phases]
    interharmonics_v = spectra.interharmonic_groups[:phases]
    irms = power = total = harmonics_i = subgroups_i = interharmonics_i = None
    thd_f_i = thd_r_i = None
    over_range = None
    if has_current:
        i_index = v_index + phases
        gain = np.ones((phases, framing.count))
        raw_irms = np.sqrt(np.maximum(diag[phases:], 0.0))
        if ct is not None:
            gain = ct.gain(raw_irms)
            over_range = np.asarray(ct.over_range(raw_irms), dtype=bool)
        irms = raw_irms * gain
        p = gram[:, v_index, i_index].T * gain
        i1 = spectra.fundamental[:, phases:].T * gain
        power = phase_power(vrms, irms, p, v1, i1)
        harmonics_i = spectra.harmonic_groups[phases:]
        subgroups_i = spectra.harmonic_subgroups[phases:]
        interharmonics_i = spectra.interharmonic_groups[phases:]
        if ct is not None:
            harmonics_i, subgroups_i, interharmonics_i = (
                values * gain[..., np.newaxis]
                for values in (harmonics_i, subgroups_i, interharmonics_i)
            )
        thd_f_i = thd_f(harmonics_i)
        thd_r_i = thd_r(harmonics_i, irms)
        if phases == 3:
            block = gram[:, phases:, phases:] * (gain.T[:, :, None] * gain.T[:, None, :])
            i_n = np.sqrt(np.maximum(block.sum(axis=(1, 2)), 0.0))
            total = three_phase_power(power, i_n, _line_voltages(gram), v1, i1)
    unbalance_iec_pct = unbalance_nema_pct = None
    if phases == 3:
        unbalance_iec_pct = unbalance_iec(v1[0], v1[1], v1[2])
        lines = _line_voltages(gram)
        unbalance_nema_pct = unbalance_nema(lines[0], lines[1], lines[2])

    start = framing.start
    end = framing.end
    window_start = start_epoch + start / fs
    window_end = start_epoch + end / fs
    covered_until = np.minimum(end, np.append(start[1:], end[-1]))
    covered_until = np.maximum(covered_until, start)
    duration = (covered_until - start) / fs

    frequency_end, frequency_hz = frequency_10s(crossings, real, fs, start_epoch)
    bounds = half_cycle_boundaries(crossings, record.samples)
    if bounds.size >= 3:
        urms_half = half_cycle_rms(record.voltage_v, bounds)
        urms_half_time = start_epoch + bounds[2:] / fs
    else:
        urms_half = np.empty((phases, 0))
        urms_half_time = np.empty(0)
    declared = (
        float(declared_voltage_v) if declared_voltage_v is not None else float(np.median(vrms))
    )
    events = detect_events(urms_half, urms_half_time, declared, thresholds) if declared > 0 else []
    flagged = overlaps_events(window_start, window_end, events)
    return Analysis(
        record=record,
        framing=framing,
        declared_voltage_v=declared,
        window_start=window_start,
        window_end=window_end,
        window_duration_s=duration,
        window_frequency_hz=cycles * fs / framing.exact_length,
        vrms=vrms,
        irms=irms,
        power=power,
        total=total,
        harmonics_v=harmonics_v,
        subgroups_v=subgroups_v,
        interharmonics_v=interharmonics_v,
        harmonics_i=harmonics_i,
        subgroups_i=subgroups_i,
        interharmonics_i=interharmonics_i,
        thd_f_v=thd_f(harmonics_v),
        thd_r_v=thd_r(harmonics_v, vrms),
        thd_f_i=thd_f_i,
        thd_r_i=thd_r_i,
        unbalance_iec_pct=unbalance_iec_pct,
        unbalance_nema_pct=unbalance_nema_pct,
        frequency_end=frequency_end,
        frequency_hz=frequency_hz,
        urms_half_time=urms_half_time,
        urms_half=urms_half,
        events=events,
        flagged=flagged,
        over_range=over_range,
        harmonic_orders=orders,
    )


def _line_voltages(gram: FloatArray) -> FloatArray:
    """RMS V_ab, V_bc, V_ca per window from the Gram matrix, shape (3, windows). [V]"""
    pairs = ((0, 1), (1, 2), (2, 0))
    squared = np.stack([gram[:, a, a] + gram[:, b, b] - 2.0 * gram[:, a, b] for a, b in pairs])
    result: FloatArray = np.sqrt(np.maximum(squared, 0.0))
    return result


def _whole(count: int) -> Aggregation:
    return Aggregation(np.arange(count, dtype=np.int64), np.zeros(1, dtype=np.int64), np.zeros(1))


def _number(value: float) -> float | None:
    return round(float(value), 6) if np.isfinite(value) else None


def _numbers(values: FloatArray) -> list[Any]:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 0:
        return [_number(float(array))]
    return [_numbers(row) if array.ndim > 1 else _number(row) for row in array]


def _record_frequency(analysis: Analysis) -> float:
    framing = analysis.framing
    crossings = framing.crossings
    valid = framing.real[:-1] & framing.real[1:]
    if not np.any(valid):
        return float("nan")
    return float(valid.sum() / (np.diff(crossings)[valid].sum() / analysis.record.fs_hz))


def summarize(analysis: Analysis) -> dict[str, Any]:
    """One value per quantity for the whole record, JSON-ready (NaN becomes None).

    RMS-type values (voltages, currents, harmonic groups, unbalance) are the RMS
    aggregate of the window values; P, P1 and Q1 their mean; S = V I, S1 = V1 I1 from the
    aggregated RMS values, and the other IEEE 1459 quantities from those. THD comes from
    the aggregated harmonic groups. Per-phase values are lists in phase order; three-phase
    totals are under ``total``.
    """
    whole = _whole(analysis.windows)
    record = analysis.record

    def rms(values: FloatArray) -> FloatArray:
        result: FloatArray = rms_aggregate(values, whole)[..., 0]
        return result

    def mean(values: FloatArray) -> FloatArray:
        result: FloatArray = mean_aggregate(values, whole)[..., 0]
        return result

    vrms = rms(analysis.vrms)
    harmonics_v = rms(analysis.harmonics_v.transpose(0, 2, 1))
    padded_v = _pad_orders(harmonics_v)
    summary: dict[str, Any] = {
        "fs": record.fs_hz,
        "f0": record.f0_hz,
        "phases": record.phases,
        "samples": record.samples,
        "windows": analysis.windows,
        "flagged_windows": int(analysis.flagged.sum()),
        "declared_voltage": _number(analysis.declared_voltage_v),
        "vrms": _numbers(vrms),
        "thd_f_v": _numbers(thd_f(harmonics_v)),
        "thd_r_v": _numbers(thd_r(harmonics_v, vrms)),
        "harmonics_v": _numbers(padded_v),
        "frequency": _number(_record_frequency(analysis)),
        "unbalance_iec_pct": None,
        "unbalance_nema_pct": None,
    }
    for name in ("irms", "p", "q1", "s", "s1", "sn", "n", "pf", "pf1", "thd_f_i", "thd_r_i"):
        summary[name] = None
    power = analysis.power
    if power is not None and analysis.harmonics_i is not None:
        irms = rms(power.i)
        p = mean(power.p)
        p1 = mean(power.p1)
        s = vrms * irms
        s1 = rms(power.v1) * rms(power.i1)
        harmonics_i = rms(analysis.harmonics_i.transpose(0, 2, 1))
        with np.errstate(invalid="ignore", divide="ignore"):
            summary.update(
                irms=_numbers(irms),
                p=_numbers(p),
                q1=_numbers(mean(power.q1)),
                s=_numbers(s),
                s1=_numbers(s1),
                sn=_numbers(np.sqrt(np.maximum(s * s - s1 * s1, 0.0))),
                n=_numbers(np.sqrt(np.maximum(s * s - p * p, 0.0))),
                pf=_numbers(np.where(s > 0, p / s, np.nan)),
                pf1=_numbers(np.where(s1 > 0, p1 / s1, np.nan)),
                thd_f_i=_numbers(thd_f(harmonics_i)),
                thd_r_i=_numbers(thd_r(harmonics_i, irms)),
                harmonics_i=_numbers(_pad_orders(harmonics_i)),
            )
    if analysis.unbalance_iec_pct is not None and analysis.unbalance_nema_pct is not None:
        summary["unbalance_iec_pct"] = _number(float(rms(analysis.unbalance_iec_pct)))
        summary["unbalance_nema_pct"] = _number(float(rms(analysis.unbalance_nema_pct)))
    total = analysis.total
    if total is not None:
        ve = float(rms(total.ve))
        ie = float(rms(total.ie))
        se = 3.0 * ve * ie
        se1 = 3.0 * float(rms(total.ve1)) * float(rms(total.ie1))
        p_total = float(mean(total.p))
        s1_plus = float(rms(total.s1_plus))
        summary["total"] = {
            "p": _number(p_total),
            "q1": _number(float(mean(total.q1))),
            "q1_plus": _number(float(mean(total.q1_plus))),
            "ve": _number(ve),
            "ie": _number(ie),
            "s": _number(se),
            "s1": _number(se1),
            "sn": _number(np.sqrt(max(se * se - se1 * se1, 0.0))),
            "n": _number(np.sqrt(max(se * se - p_total * p_total, 0.0))),
            "pf": _number(p_total / se) if se > 0 else None,
            "pf1": _number(float(mean(total.p1_plus)) / s1_plus) if s1_plus > 0 else None,
        }
    summary["events"] = [
        {
            "kind": event.kind,
            "start": event.start_time.isoformat(),
            "duration_s": _number(event.duration_s),
            "depth_pct": _number(event.depth_pct),
            "extreme_v": _number(event.extreme_v),
            "channels": [record.voltage_names[c] for c in event.channels],
            "ended": event.ended,
        }
        for event in analysis.events
    ]
    return summary


def _pad_orders(values: FloatArray) -> FloatArray:
    """Extend (phases, H) to (phases, 50) with NaN for orders the record cannot hold."""
    phases, orders = values.shape
    if orders >= REPORTED_ORDERS:
        result: FloatArray = values[:, :REPORTED_ORDERS]
        return result
    padded = np.full((phases, REPORTED_ORDERS), np.nan)
    padded[:, :orders] = values
    return padded
