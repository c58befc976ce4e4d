"""The spectral stage against a direct computation, window by window, written here.

Each window is transformed on its own with ``numpy.fft.rfft``, weighted by the band, and
reduced with plain sums: Parseval's Gram matrix, bin powers grouped bin by bin per
IEC 61000-4-7 (the functions of ``harmonics`` that take bin powers), the fundamental
phasor and the mean. Window lengths are mixed and out of order, so the batching by
length and the return to the framing's order are exercised.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from meterstack.metrology.filters import band_response, default_band
from meterstack.metrology.harmonics import (
    harmonic_groups,
    harmonic_subgroups,
    interharmonic_centred_subgroups,
    interharmonic_groups,
)
from meterstack.metrology.spectra import window_spectra
from meterstack.metrology.windows import Framing


def framing_of(start: list[int], length: list[int], cycles: int) -> Framing:
    return Framing(
        crossings=np.empty(0),
        real=np.empty(0, dtype=bool),
        start=np.array(start),
        length=np.array(length),
        exact_length=np.array(length, dtype=float),
        segment=np.zeros(len(start), dtype=np.int64),
        cycles=cycles,
    )


def mixed_lengths(nominal: int) -> tuple[list[int], list[int]]:
    """40 back-to-back windows of mixed lengths: equal lengths never adjacent."""
    lengths = [nominal + d for d in (1, -1, 0, 2, 0, -2, 1, 0, 0, -1) * 4]
    return (np.cumsum([0, *lengths[:-1]]) + 7).tolist(), lengths


def tiles_gaps_and_overlaps(nominal: int) -> tuple[list[int], list[int]]:
    """20 back-to-back windows of one length (read in place, in a batch of 16 and one of
    4), a gap, two windows that overlap (as across a 10-min tick), then 18 back-to-back."""
    starts = [7 + nominal * k for k in range(20)]
    starts += [starts[-1] + nominal + 13, starts[-1] + 2 * nominal + 13 - nominal // 3]
    starts += [starts[-1] + nominal * (k + 1) for k in range(18)]
    return starts, [nominal] * len(starts)


@pytest.mark.parametrize("layout", [mixed_lengths, tiles_gaps_and_overlaps])
@pytest.mark.parametrize(("fs", "f0", "harmonics"), [(8000.0, 50, 50), (1000.0, 50, 7)])
def test_every_window_matches_a_direct_computation(
    fs: float, f0: int, harmonics: int, layout: Callable[[int], tuple[list[int], list[int]]]
) -> None:
    rng = np.random.default_rng(11)
    cycles = 10
    nominal = round(cycles * fs / f0)
    starts, lengths = layout(nominal)
    samples = rng.normal(0.0, 50.0, (6, int(starts[-1] + lengths[-1] + 5)))
    band = default_band(fs, f0, harmonics)
    found = window_spectra(samples, framing_of(list(starts), lengths, cycles), fs, band, harmonics)
    rows = harmonics + 1
    for w, (start, length) in enumerate(zip(starts, lengths, strict=True)):
        window = samples[:, start : start + length]
        spectrum = np.fft.rfft(window, axis=-1)
        half = length // 2
        weight = band_response(np.arange(half + 1) * fs / length, band)
        c = np.sqrt(2.0) / length * spectrum  # RMS phasors of bins 0 < k < L/2
        weighted = c * weight
        gram = np.real(weighted[:, 1:] @ weighted[:, 1:].conj().T)
        np.testing.assert_allclose(found.gram[w], gram, rtol=1e-10, atol=1e-9)
        np.testing.assert_allclose(found.fundamental[w], c[:, cycles], rtol=1e-12)
        np.testing.assert_allclose(found.dc[w], window.mean(axis=-1), rtol=1e-9, atol=1e-9)
        power = np.abs(c[:, : cycles * rows]) ** 2
        for channel in range(6):
            checks = [
                (found.harmonic_groups, harmonic_groups),
                (found.harmonic_subgroups, harmonic_subgroups),
                (found.interharmonic_groups, interharmonic_groups),
                (found.interharmonic_centred_subgroups, interharmonic_centred_subgroups),
            ]
            for array, grouping in checks:
                np.testing.assert_allclose(
                    array[channel, w], grouping(power[channel], cycles), rtol=1e-9, atol=1e-9
                )


def test_no_window_gives_empty_reductions() -> None:
    found = window_spectra(
        np.zeros((2, 100)), framing_of([], [], 10), 8000.0, default_band(8000.0, 50), 50
    )
    assert found.gram.shape == (0, 2, 2)
    assert found.harmonic_groups.shape == (2, 0, 50)
    assert found.interharmonic_groups.shape == (2, 0, 51)
