"""A sampled waveform record: voltage and current samples per phase, checked once.

Every analysis in :mod:`meterstack.metrology` starts from a :class:`WaveformRecord`. Building
one validates what the measuring chain hands over: the sampling rate (1 kHz to 12.8 kHz),
the nominal frequency (50 or 60 Hz), one or three phases, channels of equal length, finite
samples, and a record long enough for one 10/12-cycle window. A record that fails raises a
:class:`WaveformError` naming the channel, the sample or the value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from meterstack.core.errors import InvalidInputError
from meterstack.core.time import ensure_utc

__all__ = [
    "MAX_SAMPLING_RATE_HZ",
    "MIN_SAMPLING_RATE_HZ",
    "FloatArray",
    "WaveformError",
    "WaveformRecord",
    "cycles_per_window",
    "make_record",
]

FloatArray = npt.NDArray[np.float64]

#: Lowest and highest sampling rates the analysis accepts. [Hz]
MIN_SAMPLING_RATE_HZ = 1000.0
MAX_SAMPLING_RATE_HZ = 12800.0

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class WaveformError(InvalidInputError):
    """A waveform record (or one of its parameters) cannot be analysed."""

    hint = "check the file's channels, its sampling rate (--fs) and its nominal frequency (--f0)"


def cycles_per_window(f0_hz: int) -> int:
    """Cycles in one IEC 61000-4-30 class A window: 10 at 50 Hz, 12 at 60 Hz.

    References
    ----------
    .. [1] IEC 61000-4-30:2015, 5.2.1 (measurement time interval of 10/12 cycles).
    """
    return 10 if f0_hz == 50 else 12


@dataclass(frozen=True, slots=True, eq=False)
class WaveformRecord:
    """Validated samples of one meter's measuring inputs.

    Attributes
    ----------
    channels : array, shape (phases or 2 * phases, samples)
        All samples in one block: the voltages, then the currents (if any). [V, A]
    phases : int
        1 or 3.
    fs_hz : float
        Sampling rate. [Hz]
    f0_hz : int
        Nominal supply frequency, 50 or 60. [Hz]
    start : datetime
        UTC time of the first sample.
    voltage_names, current_names : tuple of str
        Channel names, for messages and reports.
    """

    channels: FloatArray
    phases: int
    fs_hz: float
    f0_hz: int
    start: datetime
    voltage_names: tuple[str, ...]
    current_names: tuple[str, ...]

    @property
    def voltage_v(self) -> FloatArray:
        """Phase-to-neutral voltage samples, shape (phases, samples). [V]"""
        return self.channels[: self.phases]

    @property
    def current_a(self) -> FloatArray | None:
        """Line current samples, shape (phases, samples), or None. [A]"""
        if self.channels.shape[0] == self.phases:
            return None
        return self.channels[self.phases :]

    @property
    def samples(self) -> int:
        return int(self.channels.shape[1])

    @property
    def duration_s(self) -> float:
        return self.samples / self.fs_hz

    @property
    def start_epoch(self) -> float:
        return self.start.timestamp()

    def min_samples(self) -> int:
        return min_samples(self.fs_hz, self.f0_hz)


def min_samples(fs_hz: float, f0_hz: int) -> int:
    """Samples for one synchronised window: N cycles plus 4 for the crossing filter to settle."""
    return math.ceil((cycles_per_window(f0_hz) + 4) * fs_hz / f0_hz)


def _as_channels(values: object, field: str) -> FloatArray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise WaveformError(field, type(values).__name__, f"not numeric samples: {exc}") from exc
    if array.ndim == 1:
        array = array[np.newaxis, :]
    if array.ndim != 2:
        raise WaveformError(field, array.shape, "expected samples shaped (phases, samples)")
    if array.shape[0] not in (1, 3):
        raise WaveformError(field, array.shape[0], "a record has 1 or 3 phases")
    return array


def _check_finite(array: FloatArray, names: tuple[str, ...]) -> None:
    # One sum per channel is cheap; locate the bad sample only when a sum is not finite.
    sums = array.sum(axis=-1)
    for channel in np.flatnonzero(~np.isfinite(sums)):
        bad = np.flatnonzero(~np.isfinite(array[channel]))
        if bad.size:
            index = int(bad[0])
            raise WaveformError(
                f"{names[channel]}[{index}]",
                float(array[channel, index]),
                f"sample {index} of channel {names[channel]} is not a finite number "
                f"({bad.size} such sample(s)); repair or cut the record",
            )
        raise WaveformError(
            names[channel], "overflow", "samples are too large to sum; check the scaling"
        )


def make_record(
    voltage_v: object,
    current_a: object | None,
    fs_hz: float,
    f0_hz: int = 50,
    start: datetime = _EPOCH,
    *,
    voltage_names: tuple[str, ...] | None = None,
    current_names: tuple[str, ...] | None = None,
) -> WaveformRecord:
    """Validate samples and build a :class:`WaveformRecord`.

    Parameters
    ----------
    voltage_v : array_like, shape (samples,) or (phases, samples)
        Phase-to-neutral voltages, 1 or 3 phases. [V]
    current_a : array_like or None
        Currents, same shape as ``voltage_v``. [A]
    fs_hz : float
        Sampling rate, 1000 to 12800. [Hz]
    f0_hz : int
        Nominal frequency, 50 or 60. [Hz]
    start : datetime
        Timezone-aware time of the first sample; the Unix epoch when unknown.

    Raises
    ------
    WaveformError
        Wrong sampling rate or nominal frequency, wrong phase count, channels of different
        lengths, a sample that is not finite, or a record shorter than one window.
    """
    if (
        isinstance(fs_hz, bool)
        or not isinstance(fs_hz, (int, float))
        or not math.isfinite(fs_hz)
        or not MIN_SAMPLING_RATE_HZ <= fs_hz <= MAX_SAMPLING_RATE_HZ
    ):
        raise WaveformError(
            "fs_hz",
            fs_hz,
            f"the sampling rate must be between {MIN_SAMPLING_RATE_HZ:.0f} and "
            f"{MAX_SAMPLING_RATE_HZ:.0f} Hz",
        )
    if f0_hz not in (50, 60) or isinstance(f0_hz, bool):
        raise WaveformError("f0_hz", f0_hz, "the nominal frequency must be 50 or 60 Hz")
    start = ensure_utc(start, "start")
    voltage = _as_channels(voltage_v, "voltage_v")
    phases = voltage.shape[0]
    v_names = voltage_names or (("v",) if phases == 1 else ("va", "vb", "vc"))
    if len(v_names) != phases:
        raise WaveformError("voltage_names", v_names, f"expected {phases} name(s)")
    current: FloatArray | None = None
    i_names: tuple[str, ...] = ()
    if current_a is not None:
        current = _as_channels(current_a, "current_a")
        i_names = current_names or (("i",) if current.shape[0] == 1 else ("ia", "ib", "ic"))
        if current.shape[0] != phases:
            raise WaveformError("current_a", current.shape[0], f"the voltage has {phases} phase(s)")
        if len(i_names) != phases:
            raise WaveformError("current_names", i_names, f"expected {phases} name(s)")
        if current.shape[1] != voltage.shape[1]:
            raise WaveformError(
                i_names[0],
                current.shape[1],
                f"channels of different lengths: {v_names[0]} has {voltage.shape[1]} "
                f"samples, {i_names[0]} has {current.shape[1]}",
            )
    _check_finite(voltage, v_names)
    if current is not None:
        _check_finite(current, i_names)
    needed = min_samples(float(fs_hz), f0_hz)
    if voltage.shape[1] < needed:
        raise WaveformError(
            "samples",
            voltage.shape[1],
            f"the record is shorter than one {cycles_per_window(f0_hz)}-cycle window: "
            f"{needed} samples are needed at {fs_hz:g} Hz and {f0_hz} Hz",
        )
    channels = (
        np.array(voltage, order="C", copy=True)
        if current is None
        else np.concatenate([voltage, current])
    )
    return WaveformRecord(
        channels=channels,
        phases=phases,
        fs_hz=float(fs_hz),
        f0_hz=int(f0_hz),
        start=start,
        voltage_names=tuple(v_names),
        current_names=tuple(i_names),
    )
