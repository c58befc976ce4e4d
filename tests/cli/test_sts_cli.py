"""``meterstack sts issue`` and ``decode``: the published vectors, JSON, and named errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from meterstack.cli import app
from meterstack.cli.sts import StsFlagError

VK = "abababababababab"
COMMON = [
    "--vending-key", VK, "--iin", "600727", "--drn", "00000000000", "--key-type", "2",
    "--sgc", "123456", "--ti", "01", "--krn", "1", "--ken", "255", "--base-date", "1993",
]  # fmt: skip

runner = CliRunner()


def _run(*args: str) -> str:
    result = runner.invoke(app, ["sts", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_issue_prints_the_published_token() -> None:
    out = _run(
        "issue", *COMMON, "--ea", "07", "--dkga", "02", "--class", "0", "--subclass", "0",
        "--amount", "25.6", "--time", "2004-04-01T00:30", "--rnd", "5",
    )  # fmt: skip
    assert out.strip() == "26456622012185850752"
    assert VK not in out


def test_issue_with_pan_misty1_and_dkga04() -> None:
    out = _run(
        "issue", "--vending-key", "abababababababab949494949494949401234567",
        "--pan", "600727000000000009", "--sgc", "123457", "--ea", "11", "--dkga", "04",
        "--amount", "0.1", "--time", "2004-03-01T13:00", "--rnd", "5",
    )  # fmt: skip
    assert out.strip() == "59386323472137426967"


def test_issue_management_and_test_tokens() -> None:
    power = _run(
        "issue", *COMMON, "--class", "2", "--subclass", "0", "--amount", "256",
        "--time", "2004-04-01T07:00", "--rnd", "5",
    )  # fmt: skip
    assert power.strip() == "41932934023937597177"
    clear = _run(
        "issue", *COMMON, "--class", "2", "--subclass", "1", "--amount", "65535",
        "--time", "2004-03-29T00:00", "--rnd", "5",
    )  # fmt: skip
    assert clear.strip() == "10208942296089183521"
    test = _run("issue", "--class", "1", "--subclass", "0", "--manufacturer-code", "0",
                "--control", "1")  # fmt: skip
    assert test.strip() == "00000000000150997584"


def test_issue_key_change_prints_both_tokens() -> None:
    out = _run("issue", *COMMON, "--class", "2", "--new-ti", "02", "--new-sgc", "123456",
               "--new-krn", "1", "--new-key-type", "2")  # fmt: skip
    assert out.split() == ["51638423060042734509", "15361891762113502242"]


def test_issue_json_prints_every_field_but_no_key() -> None:
    out = _run(
        "issue", *COMMON, "--amount", "25.6", "--time", "2004-04-01T00:30", "--rnd", "5",
        "--json",
    )  # fmt: skip
    fields = json.loads(out)
    assert fields == {
        "token": "26456622012185850752",
        "class": 0,
        "subclass": 0,
        "kind": "electricity",
        "rnd": 5,
        "tid": 5915550,
        "amount": "25.6",
        "unit": "kWh",
        "time": "2004-04-01T00:30",
    }
    assert VK not in out
    assert "e653341f9d5bf36f" not in out


def test_decode_prints_the_fields() -> None:
    out = json.loads(_run("decode", "2645 6622 0121 8585 0752", *COMMON))
    assert {k: out[k] for k in ("class", "subclass", "rnd", "tid", "time", "amount", "crc_ok")} == {
        "class": 0,
        "subclass": 0,
        "rnd": 5,
        "tid": 5915550,
        "time": "2004-04-01T00:30",
        "amount": "25.6",
        "crc_ok": True,
    }
    wrong = json.loads(_run("decode", "26456622012185850752", *COMMON[:-2], "--base-date",
                            "1993", "--drn", "00000000017"))  # fmt: skip
    assert wrong["crc_ok"] is False
    test = json.loads(_run("decode", "00000000000150997584"))
    assert test == {"class": 1, "subclass": 0, "crc_ok": True, "control": 1, "manufacturer_code": 0}


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--sgc", "12345"], "--sgc"),
        (["--amount", "abc"], "--amount"),
        (["--amount", "-5"], "--amount"),
        (["--time", "yesterday"], "--time"),
        (["--time", "1990-01-01T00:00"], "--time"),
        (["--rnd", "16"], "--rnd"),
        (["--ea", "08"], "--ea"),
        (["--base-date", "2000"], "--base-date"),
        (["--krn", "0"], "--krn"),
        (["--pan", "600727000000000008"], "--pan"),
        (["--vending-key", "abab"], "--vending-key"),
        (["--class", "3"], "--class"),
        (["--subclass", "9"], "--subclass"),
        (["--class", "2", "--new-ti", "2"], "--new-ti"),
    ],
)
def test_errors_name_the_bad_flag(args: list[str], flag: str) -> None:
    base = ["issue", *COMMON, "--amount", "1", "--time", "2004-04-01T00:30"]
    with pytest.raises(StsFlagError) as caught:
        runner.invoke(app, ["sts", *base, *args], catch_exceptions=False)
    assert caught.value.field == flag
    assert VK not in str(caught.value)


def test_the_vending_key_is_never_printed_even_in_errors() -> None:
    secret = "0123456789abcdefzz"
    result = subprocess.run(
        [
            sys.executable, "-c", "from meterstack.cli import main; main()",
            "sts", "issue", "--vending-key", secret, "--drn", "00000000000", "--sgc", "123456",
            "--amount", "1", "--time", "2004-04-01T00:30",
        ],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--vending-key" in result.stderr
    assert secret not in result.stderr + result.stdout


def test_issue_and_decode_through_a_real_process() -> None:
    command = [sys.executable, "-c", "from meterstack.cli import main; main()", "sts"]
    issued = subprocess.run(
        [*command, "issue", *COMMON, "--amount", "1638.4", "--time", "2004-04-01T00:40",
         "--rnd", "5"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert issued.stdout.strip() == "49848950875249585071"
    decoded = subprocess.run(
        [*command, "decode", issued.stdout.strip(), *COMMON],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(decoded.stdout)["amount"] == "1638.4"
