import pytest

from meterstack.core import InvalidInputError, ObisCode


@pytest.mark.parametrize(
    "text",
    ["1.0.1.8.0.255", "1-0:1.8.0*255", "1-0:1.8.0.255", "1.0.1.8.0", " 1-0:1.8.0 "],
)
def test_parse_accepts_the_dotted_and_reduced_forms(text: str) -> None:
    assert ObisCode.parse(text) == ObisCode(1, 0, 1, 8, 0, 255)


def test_str_and_logical_name_bytes() -> None:
    code = ObisCode.parse("0-0:96.3.10*255")
    assert str(code) == "0.0.96.3.10.255"
    # IEC 62056-6-2: the logical name is the six groups as octets.
    assert code.to_bytes() == bytes([0, 0, 96, 3, 10, 255])


@pytest.mark.parametrize("text", ["", "1.0.1.8", "1.0.1.8.0.256", "a.b.c.d.e.f", "1.0.1.8.0.255.1"])
def test_parse_rejects_malformed_codes(text: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        ObisCode.parse(text)
    assert caught.value.field.startswith("obis")


def test_groups_are_range_checked() -> None:
    with pytest.raises(InvalidInputError) as caught:
        ObisCode(1, 0, 300, 8, 0)
    assert caught.value.field == "obis.c"
