"""The network model: CSV in and out, and bad input named by file and line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from meterstack.analytics import NetworkModel, load_network_csv
from meterstack.core.errors import InvalidInputError

CSV = """meter,transformer,feeder,rating_kva,check_meter
M1,T1,F1,100,C1
M2,T1,F1,,
M3,T2,F1,50,
M4,T3,F2,,C3
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "network.csv"
    path.write_text(text)
    return path


def test_csv_loads_and_round_trips(tmp_path: Path) -> None:
    network = load_network_csv(_write(tmp_path, CSV))
    assert network.meters == ("M1", "M2", "M3", "M4")
    assert network.transformers == ("T1", "T2", "T3")
    assert network.feeders == ("F1", "F2")
    assert network.meter_transformer.tolist() == [0, 0, 1, 2]
    assert network.transformer_feeder.tolist() == [0, 0, 1]
    assert network.meter_feeder.tolist() == [0, 0, 0, 1]
    assert network.rating_kva[:2].tolist() == [100.0, 50.0]
    assert np.isnan(network.rating_kva[2])
    assert network.check_meters == ("C1", None, "C3")
    assert network.customers_per_transformer().tolist() == [2, 1, 1]
    assert network.customers_per_feeder().tolist() == [3, 1]
    assert network.meters_of(0).tolist() == [0, 1]
    assert network.meter_index(["M4", "M1"]).tolist() == [3, 0]
    again = load_network_csv(_write(tmp_path, network.to_csv()))
    assert again.meters == network.meters
    assert again.check_meters == network.check_meters
    np.testing.assert_array_equal(again.rating_kva, network.rating_kva)


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("meter,transformer,feeder,colour\nM1,T1,F1,red\n", "network.csv:1", "unknown column"),
        ("meter,transformer\nM1,T1\n", "network.csv:1", "required column"),
        ("meter,transformer,feeder\nM1,T1,F1\nM1,T2,F1\n", "network.csv:3.meter", "listed twice"),
        ("meter,transformer,feeder\nM1,T1,F1\nM2,T1,F2\n", "network.csv:3.feeder", "already on"),
        (
            "meter,transformer,feeder,rating_kva\nM1,T1,F1,-5\n",
            "network.csv:2.rating_kva",
            "positive",
        ),
        (
            "meter,transformer,feeder,rating_kva\nM1,T1,F1,big\n",
            "network.csv:2.rating_kva",
            "number",
        ),
        ("meter,transformer,feeder\n,T1,F1\n", "network.csv:2.meter", "required"),
        ("meter,transformer,feeder\nM1,T1,F1,extra\n", "network.csv:2", "more fields"),
        ("", "network.csv", "header"),
        (
            "meter,transformer,feeder,check_meter\nM1,T1,F1,C1\nM2,T1,F1,C2\n",
            "network.csv:3.check_meter",
            "already has check meter",
        ),
    ],
)
def test_bad_csv_names_the_place(tmp_path: Path, text: str, field: str, words: str) -> None:
    with pytest.raises(InvalidInputError, match=words) as error:
        load_network_csv(_write(tmp_path, text))
    assert error.value.field.endswith(field)


def _one_meter(transformer: int = 0, check: str | None = None) -> NetworkModel:
    return NetworkModel(
        meters=("M1",),
        transformers=("T1",),
        feeders=("F1",),
        meter_transformer=np.array([transformer], np.int32),
        transformer_feeder=np.array([0], np.int32),
        rating_kva=np.array([np.nan]),
        check_meters=(check,),
    )


def test_model_checks_its_arrays() -> None:
    with pytest.raises(InvalidInputError, match="indices"):
        _one_meter(transformer=3)
    with pytest.raises(InvalidInputError, match="customer meter"):
        _one_meter(check="M1")
    with pytest.raises(InvalidInputError, match="not in the network"):
        _one_meter().meter_index(["M9"])
    with pytest.raises(InvalidInputError, match="cannot be read"):
        load_network_csv("/nonexistent/network.csv")
