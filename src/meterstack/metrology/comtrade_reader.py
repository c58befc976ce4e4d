"""COMTRADE records (IEEE C37.111): every channel as the file gives it, then a record to analyse.

Two steps, read with the ``comtrade`` package (C37.111-1991/1999/2013; ASCII, BINARY,
BINARY32 and FLOAT32 data; a ``.cfg`` with its ``.dat``, or a single-file ``.cff``):

1. :func:`load_comtrade` loads any well-formed record as a :class:`ComtradeRecord`: the
   header, the sampling rate(s), the UTC start time and every analog channel with its
   name, unit, phase, conversion factors a and b, transformer ratio and values
   ``a * raw + b`` in float64, in the channel's own unit on the side (primary or
   secondary) the file records. A sample that holds the standard's missing-value marker
   is carried as NaN and listed in :attr:`ComtradeChannel.missing`: 99999 in ASCII data
   (1999/2013; an empty field in 1991), 0x8000 = -32768 in 16-bit binary (0xFFFF in
   1991), 0x80000000 in 32-bit binary; a FLOAT32 value that is NaN counts as missing.
2. :func:`read_comtrade` builds a :class:`~meterstack.metrology.record.WaveformRecord`
   from it for :func:`~meterstack.metrology.analysis.analyze`: phase voltages and
   currents classified by unit (V, kV, mV / A, kA, mA, scaled to V and A) and phase (the
   ``ph`` field, else a trailing A/B/C, a/b/c, 1/2/3 or L1/L2/L3 in the name; neutral and
   residual channels are left out), converted to the primary side by default
   (x primary/secondary for channels recorded on the secondary side). A record that
   cannot be analysed raises one :class:`ComtradeRecordError` that lists every reason:
   no phase voltage channel, a sampling rate outside 1-12.8 kHz or more than one, too few
   samples for one 10/12-cycle window, a line frequency other than 50/60 Hz without
   ``f0_hz``, and missing values in a channel the analysis would use (named with its
   COMTRADE sample numbers). Missing values are never interpolated.

The start time is the first-sample time moved to UTC with the 2013 time code (``-5h30``:
local time is UTC - 5:30); records without one (1991, 1999) are taken as UTC. A
configuration file that is not UTF-8 is read as ISO 8859-1.

References
----------
.. [1] IEEE Std C37.111-2013 (IEC 60255-24:2013), Common format for transient data
       exchange (COMTRADE), clauses 6 (configuration file), 7 (data file) and 9
       (single-file format); IEEE Std C37.111-1999, 5 and 6.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import comtrade
import numpy as np
import numpy.typing as npt

from meterstack.metrology.record import (
    MAX_SAMPLING_RATE_HZ,
    MIN_SAMPLING_RATE_HZ,
    FloatArray,
    WaveformError,
    WaveformRecord,
    cycles_per_window,
    make_record,
    min_samples,
)

__all__ = [
    "ComtradeChannel",
    "ComtradeRecord",
    "ComtradeRecordError",
    "load_comtrade",
    "read_comtrade",
]

Side = Literal["primary", "secondary"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UNIT_SCALE = {"v": ("voltage", 1.0), "kv": ("voltage", 1e3), "mv": ("voltage", 1e-3)}
_UNIT_SCALE |= {"a": ("current", 1.0), "ka": ("current", 1e3), "ma": ("current", 1e-3)}
_PHASE_FIELD = {"a": 0, "b": 1, "c": 2, "1": 0, "2": 1, "3": 2, "l1": 0, "l2": 1, "l3": 2}
_PHASE_IN_NAME = re.compile(r"(?:^|[^a-z0-9])?(?:[vuia]|ph)?_?(l?[123]|[abc])$")
_NEUTRAL = re.compile(r"(^|[^a-z])(n|3i0|3v0|i0|v0|res|gnd|neutral)$")


class ComtradeRecordError(WaveformError):
    """A COMTRADE record cannot be read, or cannot be analysed; the reason says why."""

    hint = (
        "pair the .cfg with its data file (--dat), give the nominal frequency (--f0), "
        "or analyse a record of phase voltages sampled at 1-12.8 kHz"
    )


@dataclass(frozen=True, slots=True, eq=False)
class ComtradeChannel:
    """One analog channel as the file defines it.

    Attributes
    ----------
    index : int
        The channel number An (from 1).
    name, unit, phase, circuit : str
        ch_id, uu, ph and ccbm of the configuration line, stripped.
    a, b : float
        Conversion factors: value = a * raw + b. [unit per count, unit]
    primary, secondary : float
        Transformer ratio factors (1 and 1 when the file has none).
    side : str
        ``"primary"`` or ``"secondary"``: the side the values are recorded on (PS field).
    values : array, shape (samples,)
        a * raw + b in float64; NaN where the file holds the missing-value marker. [unit]
    """

    index: int
    name: str
    unit: str
    phase: str
    circuit: str
    a: float
    b: float
    primary: float
    secondary: float
    side: Side
    values: FloatArray

    @property
    def missing(self) -> npt.NDArray[np.int64]:
        """COMTRADE sample numbers (from 1) of the samples that hold the missing marker."""
        result: npt.NDArray[np.int64] = np.flatnonzero(np.isnan(self.values)) + 1
        return result

    def values_on(self, side: Side) -> FloatArray:
        """The values on the ``side`` of the instrument transformer.

        primary = secondary * (primary / secondary) (IEEE C37.111-2013, 6.4, the
        primary, secondary and PS fields).
        """
        if side == self.side:
            return self.values
        if not (self.primary > 0 and self.secondary > 0):
            raise ComtradeRecordError(
                f"channel {self.name}",
                (self.primary, self.secondary),
                f"no transformer ratio to convert its values to the {side} side",
            )
        ratio = self.primary / self.secondary
        result: FloatArray = self.values * ratio if side == "primary" else self.values / ratio
        return result


@dataclass(frozen=True, slots=True, eq=False)
class ComtradeRecord:
    """Everything :func:`load_comtrade` reads from one record.

    Attributes
    ----------
    path : Path
        The ``.cfg`` or ``.cff`` file.
    station, device : str
        Station name and recording device id.
    revision : str
        Revision year of the standard (``"1991"``, ``"1999"`` or ``"2013"``).
    data_format : str
        ``"ASCII"``, ``"BINARY"``, ``"BINARY32"`` or ``"FLOAT32"``.
    line_frequency_hz : float
        The lf field (0 when the file gives none). [Hz]
    sampling_rates : tuple of (float, int)
        (samp, endsamp) per rate segment. [Hz, sample number]
    start : datetime
        UTC time of the first sample.
    channels : tuple of ComtradeChannel
        The analog channels in file order.
    digital_channels : int
        Number of status channels (not read further).
    """

    path: Path
    station: str
    device: str
    revision: str
    data_format: str
    line_frequency_hz: float
    sampling_rates: tuple[tuple[float, int], ...]
    start: datetime
    channels: tuple[ComtradeChannel, ...]
    digital_channels: int

    @property
    def samples(self) -> int:
        """Samples per channel."""
        return int(self.channels[0].values.size) if self.channels else 0

    @property
    def missing_marker(self) -> str:
        """The missing-value marker of this record's data format and revision."""
        if self.data_format == "ASCII":
            return "an empty field" if self.revision == "1991" else "99999"
        if self.data_format == "BINARY":
            return "0xFFFF" if self.revision == "1991" else "0x8000"
        if self.data_format == "BINARY32":
            return "0x80000000"
        return "NaN"


def _time_code_offset(code: object) -> timedelta:
    """Offset of local time from UTC in a C37.111-2013 time code such as ``-5h30``."""
    text = str(code or "").strip().lower()
    match = re.fullmatch(r"([+-]?)(\d{1,2})(?:h(\d{1,2}))?", text)
    if not match or text in {"", "0", "x"}:
        return timedelta(0)
    sign = -1 if match.group(1) == "-" else 1
    return sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3) or 0))


def _parse(cfg: Path, dat: Path | None, encoding: str) -> comtrade.Comtrade:
    parsed = comtrade.Comtrade(
        ignore_warnings=True, use_double_precision=True, use_numpy_arrays=True
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dat is None:
            parsed.load(str(cfg), encoding=encoding)
        else:
            parsed.load(str(cfg), str(dat), encoding=encoding)
    return parsed


def load_comtrade(cfg_path: str | Path, dat_path: str | Path | None = None) -> ComtradeRecord:
    """Load a COMTRADE record: header, rates, start time and every analog channel.

    Parameters
    ----------
    cfg_path : str or Path
        The ``.cfg`` file, or a single-file ``.cff``.
    dat_path : str or Path, optional
        The data file of a ``.cfg`` when it is not the ``.dat`` of the same name.

    Raises
    ------
    ComtradeRecordError
        A file is missing, or the record cannot be parsed.
    """
    cfg = Path(cfg_path)
    suffix = cfg.suffix.lower()
    if suffix not in {".cfg", ".cff"}:
        raise ComtradeRecordError(str(cfg), cfg.suffix, "expected a COMTRADE .cfg or .cff file")
    if not cfg.is_file():
        raise ComtradeRecordError(str(cfg), "missing", "no such file")
    dat: Path | None = None
    if suffix == ".cfg":
        dat = Path(dat_path) if dat_path is not None else _data_file_of(cfg)
        if not dat.is_file():
            raise ComtradeRecordError(
                str(dat), "missing", f"no data file for {cfg.name}: give its path (--dat)"
            )
    try:
        try:
            parsed = _parse(cfg, dat, "utf-8")
        except UnicodeDecodeError:
            parsed = _parse(cfg, dat, "iso-8859-1")
    except Exception as exc:  # the comtrade package raises many kinds on a bad file
        raise ComtradeRecordError(
            str(cfg), "unreadable", f"not a readable COMTRADE record: {exc}"
        ) from exc
    header = parsed.cfg
    channels = tuple(
        ComtradeChannel(
            index=int(channel.n),
            name=str(channel.name).strip(),
            unit=str(channel.uu).strip(),
            phase=str(channel.ph).strip(),
            circuit=str(channel.ccbm).strip(),
            a=float(channel.a),
            b=float(channel.b),
            primary=float(channel.primary),
            secondary=float(channel.secondary),
            side="secondary" if str(channel.pors).strip().upper() == "S" else "primary",
            values=np.asarray(values, dtype=np.float64),
        )
        for channel, values in zip(header.analog_channels, parsed.analog, strict=True)
    )
    start = header.start_timestamp
    if not isinstance(start, datetime):
        start = _EPOCH.replace(tzinfo=None)
    offset = _time_code_offset(getattr(header, "_time_code", ""))
    return ComtradeRecord(
        path=cfg,
        station=str(header.station_name).strip(),
        device=str(header.rec_dev_id).strip(),
        revision=str(header.rev_year).strip(),
        data_format=str(header.ft).strip().upper(),
        line_frequency_hz=float(header.frequency or 0.0),
        sampling_rates=tuple((float(rate), int(end)) for rate, end in header.sample_rates),
        start=(start - offset).replace(tzinfo=UTC),
        channels=channels,
        digital_channels=int(header.status_count),
    )


def _data_file_of(cfg: Path) -> Path:
    """The ``.dat`` beside a ``.cfg``, in the case of the ``.cfg``'s extension."""
    extension = ".DAT" if cfg.suffix.isupper() else ".dat"
    return cfg.with_suffix(extension)


def _phase_of(name: str, ph: str) -> int | None:
    field = ph.strip().lower()
    if field in _PHASE_FIELD:
        return _PHASE_FIELD[field]
    if field in {"n", "neutral"}:
        return None
    lowered = name.strip().lower()
    if _NEUTRAL.search(lowered):
        return None
    match = _PHASE_IN_NAME.search(lowered)
    return _PHASE_FIELD[match.group(1)] if match else None


def _classify(
    record: ComtradeRecord,
) -> tuple[dict[int, ComtradeChannel], dict[int, ComtradeChannel], list[str]]:
    """Phase voltage and current channels by phase, and the problems found on the way."""
    by_kind: dict[str, dict[int, ComtradeChannel]] = {"voltage": {}, "current": {}}
    problems: list[str] = []
    for channel in record.channels:
        unit = channel.unit.lower()
        if unit not in _UNIT_SCALE:
            continue
        kind, _ = _UNIT_SCALE[unit]
        phase = _phase_of(channel.name, channel.phase)
        if phase is None:
            continue
        if phase in by_kind[kind]:
            problems.append(
                f"two {kind} channels for phase {'ABC'[phase]}: "
                f"{by_kind[kind][phase].name} and {channel.name}"
            )
            continue
        by_kind[kind][phase] = channel
    voltages, currents = by_kind["voltage"], by_kind["current"]
    if not voltages:
        listing = ", ".join(f"{c.name} ({c.unit or 'no unit'})" for c in record.channels)
        problems.append(
            "no phase voltage channel (unit V, kV or mV with a phase A, B or C); "
            f"the analog channels are {listing or 'none'}"
        )
    elif sorted(voltages) not in ([0], [0, 1, 2]):
        problems.append(
            "need the voltage of phase A alone or of phases A, B and C, not "
            + ", ".join(voltages[p].name for p in sorted(voltages))
        )
    elif currents and sorted(currents) != sorted(voltages):
        problems.append(
            "the currents ("
            + ", ".join(currents[p].name for p in sorted(currents))
            + ") must cover the same phases as the voltages"
        )
    return voltages, currents, problems


def read_comtrade(
    cfg_path: str | Path,
    dat_path: str | Path | None = None,
    f0_hz: int | None = None,
    *,
    side: Side = "primary",
) -> WaveformRecord:
    """Read a COMTRADE record's phase voltages and currents for the analysis.

    Parameters
    ----------
    cfg_path : str or Path
        The ``.cfg`` (or single-file ``.cff``) file.
    dat_path : str or Path, optional
        The data file, when it is not the ``.dat`` of the same name.
    f0_hz : int, optional
        Nominal frequency, 50 or 60; by default the record's line frequency.
    side : str
        ``"primary"`` (default) or ``"secondary"``: the side of the instrument
        transformers the values are converted to (with each channel's ratio).

    Raises
    ------
    ComtradeRecordError
        The record cannot be read, or cannot be analysed; the message lists every reason
        (module docstring).
    """
    record = load_comtrade(cfg_path, dat_path)
    voltages, currents, problems = _classify(record)
    rates = [rate for rate, _ in record.sampling_rates]
    fs_hz = rates[0] if rates else 0.0
    if len(rates) != 1 or not fs_hz:
        problems.append(
            f"{len(rates)} sampling rates ({', '.join(f'{r:g} Hz' for r in rates) or 'none'}); "
            "exactly one non-zero rate is supported"
        )
    elif not MIN_SAMPLING_RATE_HZ <= fs_hz <= MAX_SAMPLING_RATE_HZ:
        problems.append(
            f"{fs_hz:g} Hz is outside the {MIN_SAMPLING_RATE_HZ:g}-{MAX_SAMPLING_RATE_HZ:g} Hz "
            "sampling rates the analysis accepts"
        )
    nominal = f0_hz if f0_hz is not None else round(record.line_frequency_hz)
    if nominal not in (50, 60):
        problems.append(
            f"the line frequency in the file is {record.line_frequency_hz:g} Hz, not 50 or "
            "60 Hz: give the nominal frequency (f0_hz, --f0)"
        )
    elif fs_hz > 0:
        needed = min_samples(fs_hz, nominal)
        if record.samples < needed:
            cycles = cycles_per_window(nominal)
            problems.append(
                f"{record.samples} samples is shorter than one {cycles}-cycle window: "
                f"{needed} samples are needed at {fs_hz:g} Hz and {nominal} Hz "
                f"({cycles} cycles and 4 for the zero-crossing filter to settle)"
            )
    used = [*(voltages[p] for p in sorted(voltages)), *(currents[p] for p in sorted(currents))]
    gaps = [
        f"{channel.name} sample {_numbers(channel.missing)}"
        for channel in used
        if channel.missing.size
    ]
    if gaps:
        problems.append(
            f"missing values (marker {record.missing_marker}, carried as NaN, never "
            f"interpolated) in {'; '.join(gaps)}"
        )
    if problems:
        raise ComtradeRecordError(
            record.path.name,
            f"{len(record.channels)} analog channel{'s' if len(record.channels) != 1 else ''}, "
            f"{fs_hz:g} Hz, {record.samples} samples",
            "cannot be analysed: " + "; ".join(problems),
        )

    def samples_of(channel: ComtradeChannel) -> FloatArray:
        _, scale = _UNIT_SCALE[channel.unit.lower()]
        result: FloatArray = channel.values_on(side) * scale
        return result

    phases = sorted(voltages)
    return make_record(
        np.stack([samples_of(voltages[p]) for p in phases]),
        np.stack([samples_of(currents[p]) for p in phases]) if currents else None,
        fs_hz,
        nominal,
        record.start,
        voltage_names=tuple(voltages[p].name for p in phases),
        current_names=tuple(currents[p].name for p in phases) if currents else None,
    )


def _numbers(numbers: npt.NDArray[np.int64], shown: int = 5) -> str:
    """``2``, ``2, 7 and 9`` or ``2, 7, 9, 11, 12 and 40 more``."""
    listed = [str(int(n)) for n in numbers[:shown]]
    if numbers.size > shown:
        return ", ".join(listed) + f" and {numbers.size - shown} more"
    if len(listed) == 1:
        return listed[0]
    return ", ".join(listed[:-1]) + " and " + listed[-1]
