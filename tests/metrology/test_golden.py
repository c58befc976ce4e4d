"""The shared golden cases (../shared/data/pq/golden.json), reproduced two ways:

* the spectral path alone, on exactly the golden sample count as one window;
* the whole pipeline (zero crossings, synchronised windows, summary) on the same signal
  repeated, so that several synchronised windows fit.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from meterstack.metrology import analyze, make_record, summarize
from meterstack.metrology.filters import default_band
from meterstack.metrology.harmonics import thd_f
from meterstack.metrology.power import phase_power
from meterstack.metrology.spectra import window_spectra
from meterstack.metrology.unbalance import unbalance_iec, unbalance_nema
from meterstack.metrology.windows import Framing
from tests.metrology.signals import data_dir, tone

REL = 1e-6
ABS = 1e-3  # the golden values carry 3 to 6 decimals


def cases() -> list[dict[str, Any]]:
    path = data_dir() / "pq" / "golden.json"
    loaded: list[dict[str, Any]] = json.loads(path.read_text())["cases"]
    return loaded


def signals(case: dict[str, Any], samples: int) -> tuple[np.ndarray, np.ndarray | None]:
    fs, f0 = case["fs"], case["f0"]
    if "v" in case:
        voltage = tone(case["v"], fs, samples, f0)[np.newaxis]
        current = tone(case["i"], fs, samples, f0)[np.newaxis] if "i" in case else None
        return voltage, current
    return np.stack([tone(case[k], fs, samples, f0) for k in ("va", "vb", "vc")]), None


def one_window(case: dict[str, Any]) -> dict[str, float]:
    fs, f0, samples = case["fs"], case["f0"], case["samples"]
    voltage, current = signals(case, samples)
    channels = voltage if current is None else np.concatenate([voltage, current])
    framing = Framing(
        crossings=np.empty(0),
        real=np.empty(0, dtype=bool),
        start=np.array([0]),
        length=np.array([samples]),
        exact_length=np.array([float(samples)]),
        segment=np.array([0]),
        cycles=10 if f0 == 50 else 12,
    )
    spectra = window_spectra(channels, framing, fs, default_band(fs, f0), 50)
    gram = spectra.gram[0]
    groups = spectra.harmonic_groups[:, 0]
    phases = voltage.shape[0]
    found = {"vrms": float(np.sqrt(gram[0, 0])), "thd_f_v_pct": float(thd_f(groups[0]))}
    v1 = spectra.fundamental[0, :phases]
    if current is not None:
        power = phase_power(
            np.sqrt(gram[0, 0]), np.sqrt(gram[1, 1]), gram[0, 1], v1[0], spectra.fundamental[0, 1]
        )
        for name in ("p", "q1", "s", "s1", "sn", "n", "pf", "pf1"):
            found[name] = float(getattr(power, name))
    if phases == 3:
        found["unbalance_iec_pct"] = float(unbalance_iec(v1[0], v1[1], v1[2]))
        lines = [
            np.sqrt(gram[a, a] + gram[b, b] - 2 * gram[a, b]) for a, b in ((0, 1), (1, 2), (2, 0))
        ]
        found["unbalance_nema_line_to_line_pct"] = float(unbalance_nema(*lines))
    return found


@pytest.mark.parametrize("index", range(3))
def test_golden_case_as_one_window(index: int) -> None:
    case = cases()[index]
    found = one_window(case)
    for name, expected in case["expected"].items():
        assert found[name] == pytest.approx(expected, rel=REL, abs=ABS), name


SUMMARY_NAMES = {
    "vrms": "vrms",
    "thd_f_v_pct": "thd_f_v",
    "unbalance_nema_line_to_line_pct": "unbalance_nema_pct",
}


@pytest.mark.parametrize("index", range(3))
def test_golden_case_through_the_pipeline(index: int) -> None:
    case = cases()[index]
    voltage, current = signals(case, 5 * case["samples"])
    summary = summarize(analyze(make_record(voltage, current, case["fs"], case["f0"])))
    assert summary["windows"] >= 3
    for name, expected in case["expected"].items():
        value = summary[SUMMARY_NAMES.get(name, name)]
        value = value[0] if isinstance(value, list) else value
        assert value == pytest.approx(expected, rel=REL, abs=ABS), name
