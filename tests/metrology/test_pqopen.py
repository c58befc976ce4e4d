"""Differential tests against pqopen-lib (MIT), an independent implementation, where the two
overlap: harmonic subgroups, interharmonic centred subgroups, THD and unbalance."""

from __future__ import annotations

import numpy as np
import pytest

pqopen = pytest.importorskip("pqopen.powerquality")

from meterstack.metrology import analyze, make_record  # noqa: E402
from meterstack.metrology.harmonics import (  # noqa: E402
    harmonic_subgroups,
    interharmonic_centred_subgroups,
    thd_f,
)
from meterstack.metrology.unbalance import unbalance_iec, zero_sequence_ratio  # noqa: E402
from tests.metrology.signals import tone  # noqa: E402

FS = 10240.0
COMPONENTS = [
    (1, 230.0, 10),
    (3, 6.0, 40),
    (5, 11.0, -20),
    (7, 7.0, 5),
    (13, 2.0, 0),
    (2.5, 1.5, 0),
]


def pqopen_spectrum(window: np.ndarray) -> np.ndarray:
    """pqopen's own scaling: rfft / n * sqrt(2) (its resample_and_fft at the same size)."""
    result: np.ndarray = pqopen.resample_and_fft(window, window.size)
    return result


def test_subgroups_interharmonics_and_thd_agree_on_the_same_windows() -> None:
    samples = int(FS * 2)
    voltage = tone(COMPONENTS, FS, samples, 50.0)
    analysis = analyze(make_record(voltage, None, FS, 50))
    framing = analysis.framing
    for w in range(framing.count):
        start, length = framing.start[w], framing.length[w]
        spectrum = pqopen_spectrum(voltage[start : start + length])
        theirs, _ = pqopen.calc_harmonics(spectrum, 10, 50)
        np.testing.assert_allclose(analysis.subgroups_v[0, w], theirs[1:51], rtol=1e-9, atol=1e-9)
        their_inter = pqopen.calc_interharmonics(spectrum, 10, 50)
        ours = interharmonic_centred_subgroups(np.abs(spectrum[:510]) ** 2, 10)
        np.testing.assert_allclose(ours, their_inter[:51], rtol=1e-9, atol=1e-9)
        assert thd_f(harmonic_subgroups(np.abs(spectrum[:510]) ** 2, 10)) == pytest.approx(
            pqopen.calc_thd(theirs, max_harmonic=50), rel=1e-9
        )


def test_thd_of_the_pipeline_matches_pqopen_on_subgroups() -> None:
    voltage = tone(COMPONENTS, FS, int(FS), 50.0)
    analysis = analyze(make_record(voltage, None, FS, 50))
    theirs = pqopen.calc_thd(np.concatenate([[0.0], analysis.subgroups_v[0, 0]]), max_harmonic=50)
    assert thd_f(analysis.subgroups_v[0, 0]) == pytest.approx(theirs, rel=1e-9)


@pytest.mark.parametrize(
    ("magnitudes", "angles"),
    [
        ((230.0, 225.0, 236.0), (0.0, -121.0, 118.5)),
        ((100.0, 90.0, 100.0), (0.0, -120.0, 120.0)),
        ((230.0, 0.0, 230.0), (0.0, -120.0, 120.0)),
    ],
)
def test_unbalance_matches_pqopen(magnitudes: tuple[float, ...], angles: tuple[float, ...]) -> None:
    phasors = [m * np.exp(1j * np.deg2rad(a)) for m, a in zip(magnitudes, angles, strict=True)]
    their_u0, their_u2 = pqopen.calc_unbalance(phasors)
    assert float(unbalance_iec(*phasors)) == pytest.approx(their_u2, rel=1e-12)
    assert float(zero_sequence_ratio(*phasors)) == pytest.approx(their_u0, rel=1e-12)


def test_pipeline_unbalance_matches_pqopen() -> None:
    samples = int(FS)
    voltage = np.stack(
        [
            tone([(1, 230.0, 0)], FS, samples, 50.0),
            tone([(1, 220.0, -123)], FS, samples, 50.0),
            tone([(1, 233.0, 121)], FS, samples, 50.0),
        ]
    )
    analysis = analyze(make_record(voltage, None, FS, 50))
    framing = analysis.framing
    start, length = framing.start[0], framing.length[0]
    phasors = [pqopen_spectrum(voltage[c, start : start + length])[10] for c in range(3)]
    _, their_u2 = pqopen.calc_unbalance(phasors)
    assert analysis.unbalance_iec_pct[0] == pytest.approx(their_u2, rel=1e-9)
