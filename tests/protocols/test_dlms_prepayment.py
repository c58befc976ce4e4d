"""Account, credit and charge (classes 111-113) over DLMS, against the meter model.

The charges are recomputed here from the meter's per-rate registers, the tariff and the
local calendar (``zoneinfo``) and compared with what the meter reports; gurux-dlms reads
the same objects as an independent client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from gurux_dlms.enums import Authentication
from gurux_dlms.objects import GXDLMSAccount, GXDLMSCharge, GXDLMSCredit
from gurux_dlms.objects.enums import AccountCreditStatus

from meterstack.core.obis import ObisCode
from meterstack.core.time import SimulatedClock
from meterstack.meter import Measurement, Meter, MeterConfig, PrepaidConfig
from meterstack.meter.config import RateSwitch, Season, TouCalendarConfig
from meterstack.protocols.dlms import DlmsServer, LogicalDevice, default_clients
from meterstack.protocols.dlms.apdu import DataAccessResult
from meterstack.protocols.dlms.axdr import Data, decode_date_time
from meterstack.protocols.dlms.client import ClientSettings, DlmsClient
from meterstack.protocols.errors import DlmsServiceError

from .gurux_peer import GuruxPeer
from .support import PASSWORD, START, ServerThread, security

ACCOUNT = ObisCode(0, 0, 19, 0, 0)
TOKEN_CREDIT = ObisCode(0, 0, 19, 10, 0)
EMERGENCY_CREDIT = ObisCode(0, 0, 19, 10, 1)
CONSUMPTION = ObisCode(0, 0, 19, 20, 0)
STANDING = ObisCode(0, 0, 19, 20, 1)
DEBT_RECOVERY = ObisCode(0, 0, 19, 20, 2)
TZ = "Africa/Johannesburg"
PRICES = {1: Decimal("0.1234"), 2: Decimal("0.2875")}
STANDING_PER_DAY = Decimal("0.45")
READER = ClientSettings.low(PASSWORD)


def two_rates() -> TouCalendarConfig:
    """Rate 2 from 07:00 to 23:00 every day, rate 1 at night."""
    return TouCalendarConfig(
        seasons=[Season(start="01-01", week_profile="year")],
        week_profiles={"year": ["day"] * 7},
        day_profiles={
            "day": [
                RateSwitch(start="00:00", rate=1),
                RateSwitch(start="07:00", rate=2),
                RateSwitch(start="23:00", rate=1),
            ]
        },
    )


def prepaid_meter(days: int = 3, **overrides: Any) -> Meter:
    plan: dict[str, Any] = {
        "price_per_kwh": PRICES,
        "initial_credit": Decimal(40),
        "low_credit_threshold": Decimal(5),
        "low_credit_trip": False,
        "emergency_credit": Decimal(5),
        "debt_recovery_pct": Decimal(25),
        "initial_debt": Decimal(3),
        "standing_charge_per_day": STANDING_PER_DAY,
    }
    plan.update(overrides)
    config = MeterConfig(
        serial="MS000111", timezone=TZ, tou=two_rates(), prepaid=PrepaidConfig(**plan)
    )
    meter = Meter(config, commissioned_at=START)
    at = START
    for step in range(days * 96):
        at += timedelta(minutes=15)
        watts = 1000.0 + 37.0 * (step % 11)
        meter.step(Measurement(at, (230.0,), (watts / 230,), (watts,), (0.0,), frequency_hz=50.0))
    return meter


def serve(meter: Meter, body: Callable[[int, LogicalDevice], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        device = LogicalDevice.for_meter(
            meter, SimulatedClock(meter.now + timedelta(seconds=1)), security(), default_clients()
        )
        server = DlmsServer({1: device})
        port = await server.start("127.0.0.1", 0)
        try:
            return await body(port, device)
        finally:
            await server.close()

    return asyncio.run(main())


def local_midnights(start: datetime, until: datetime) -> list[datetime]:
    """Local midnights in (start, until], from zoneinfo directly."""
    tz = ZoneInfo(TZ)
    day = start.astimezone(tz).date()
    found = []
    while True:
        day += timedelta(days=1)
        midnight = datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)
        if midnight > until:
            return found
        if midnight > start:
            found.append(midnight)


async def read_all(client: DlmsClient, class_id: int, obis: ObisCode, count: int) -> dict[int, Any]:
    values: dict[int, Any] = {}
    for attribute in range(2, count + 1):
        try:
            values[attribute] = await client.get(class_id, obis, attribute)
        except DlmsServiceError as exc:
            values[attribute] = DataAccessResult(exc.result)
    return values


def test_charges_match_the_tariff_applied_to_the_registers() -> None:
    meter = prepaid_meter()

    async def body(port: int, device: LogicalDevice) -> None:
        async with await DlmsClient.connect("127.0.0.1", port, READER) as client:
            consumption = await read_all(client, 113, CONSUMPTION, 13)
            standing = await read_all(client, 113, STANDING, 13)
            recovery = await read_all(client, 113, DEBT_RECOVERY, 13)
            account = await read_all(client, 111, ACCOUNT, 19)
        credit = meter.credit
        assert credit is not None
        # the tariff applied here: Wh per rate x price per kWh, plus one standing charge per
        # local midnight crossed
        energy = sum(
            Decimal(meter.registers.a_plus_rate[rate]) * price / 1000
            for rate, price in PRICES.items()
        )
        midnights = local_midnights(START, meter.measured_until)
        assert len(midnights) == 3
        expected_total = energy + STANDING_PER_DAY * len(midnights)
        assert abs(consumption[2].value - expected_total * 100) <= Decimal("0.5")
        # charge per unit x 10^price_scale is each rate's price, on A+ in kWh
        (commodity_scale, scale), (class_id, name, index), table = (
            tuple(item.value for item in part.value) if part.type != 1 else part.value
            for part in consumption[5].value
        )
        assert (commodity_scale, class_id, name, index) == (-3, 3, bytes((1, 0, 1, 8, 0, 255)), 2)
        prices = {row.value[0].value[0]: Decimal(row.value[1].value).scaleb(scale) for row in table}
        assert prices == PRICES
        assert consumption[3].value == 0  # consumption based
        assert consumption[9].value == "01"  # continuous
        assert decode_date_time(consumption[10].value) == meter.measured_until
        assert consumption[11] == DataAccessResult.OBJECT_UNAVAILABLE
        # the standing charge: per day, last taken at the last local midnight
        assert standing[3].value == 1
        assert standing[8].value == 86_400
        scaling, commodity, standing_table = standing[5].value
        assert commodity.value[1].value == bytes((0, 0, 1, 0, 0, 255))  # per time: the clock
        per_day = Decimal(standing_table.value[0].value[1].value).scaleb(scaling.value[1].value)
        assert per_day == STANDING_PER_DAY
        assert decode_date_time(standing[10].value) == midnights[-1]
        assert standing[11].value == 45
        assert standing[2] == DataAccessResult.OBJECT_UNAVAILABLE
        # debt recovery: 25 % of each payment until the debt is gone
        assert recovery[3].value == 2
        assert recovery[9].value == "10"
        assert recovery[12].value == round(credit.debt * 100)
        assert recovery[13].value == 2500
        # the account
        assert account[5].value == round(credit.available * 100)
        assert account[8].value == 300  # the initial debt of 3.00
        assert [v.value for v in account[10].value] == [
            CONSUMPTION.to_bytes(),
            STANDING.to_bytes(),
            DEBT_RECOVERY.to_bytes(),
        ]
        gateway = account[12].value[0].value
        assert (gateway[0].value, gateway[1].value) == (TOKEN_CREDIT.to_bytes(), 75)
        assert decode_date_time(account[13].value) == START
        assert account[15].value[1].value == -2
        assert account[16].value == account[17].value == 500
        assert all(not isinstance(v, DataAccessResult) for v in account.values())

    serve(meter, body)


def test_credit_states_follow_the_meter_into_emergency_credit() -> None:
    meter = prepaid_meter(days=1, initial_credit=Decimal("12"), initial_debt=Decimal(0))

    async def body(port: int, device: LogicalDevice) -> None:
        credit = meter.credit
        assert credit is not None
        async with await DlmsClient.connect("127.0.0.1", port, READER) as client:
            token = await read_all(client, 112, TOKEN_CREDIT, 11)
            emergency = await read_all(client, 112, EMERGENCY_CREDIT, 11)
            status = (await client.get(111, ACCOUNT, 4)).value
            assert token[2].value == round(credit.credit * 100)
            assert (token[3].value, token[7].value, token[8].value) == (0, "00001", 3)
            assert (emergency[3].value, emergency[7].value) == (2, "01100")
            assert emergency[8].value == 1  # low: emergency credit is selectable
            assert emergency[9].value == emergency[2].value == 500
            assert status == "11110000"  # in credit, low, next credit enabled and selectable
            await client.action(112, EMERGENCY_CREDIT, 3, Data.integer(0))
            assert credit.emergency_active
            assert (await client.get(112, EMERGENCY_CREDIT, 8)).value == 3  # in use
            assert (await client.get(111, ACCOUNT, 3)).value == 2
            assert (await client.get(111, ACCOUNT, 4)).value[5] == "1"
            with pytest.raises(DlmsServiceError):  # already in use
                await client.action(112, EMERGENCY_CREDIT, 3, Data.integer(0))
            with pytest.raises(DlmsServiceError):  # only tokens change the token credit
                await client.action(112, TOKEN_CREDIT, 1, Data.double_long(100))

    # spend the credit down to 3.00 so that the meter is below its 5.00 threshold
    assert meter.credit is not None
    meter.credit.charge(meter.credit.credit - Decimal(3))
    serve(meter, body)


def test_energy_mode_counts_watt_hours() -> None:
    meter = prepaid_meter(
        days=1,
        mode="energy",
        price_per_kwh={1: Decimal(1), 2: Decimal(1)},
        standing_charge_per_day=Decimal(0),
        initial_credit=Decimal(100),
    )

    async def body(port: int, device: LogicalDevice) -> None:
        async with await DlmsClient.connect("127.0.0.1", port, READER) as client:
            currency = (await client.get(111, ACCOUNT, 15)).value
            charges = (await client.get(111, ACCOUNT, 10)).value
            with pytest.raises(DlmsServiceError) as absent:
                await client.get(113, STANDING, 2)
            paid = (await client.get(113, CONSUMPTION, 2)).value
        assert (currency[1].value, currency[2].value) == (-3, 1)  # Wh, consumption
        assert [c.value for c in charges] == [CONSUMPTION.to_bytes(), DEBT_RECOVERY.to_bytes()]
        assert absent.value.result == DataAccessResult.OBJECT_UNDEFINED
        assert paid == meter.registers.a_plus  # one Wh of credit per Wh imported

    serve(meter, body)


def test_a_credit_meter_has_no_account() -> None:
    meter = Meter(MeterConfig(serial="MS000112"), commissioned_at=START)

    async def body(port: int, device: LogicalDevice) -> None:
        async with await DlmsClient.connect("127.0.0.1", port, READER) as client:
            with pytest.raises(DlmsServiceError) as refused:
                await client.get(111, ACCOUNT, 5)
        assert refused.value.result == DataAccessResult.OBJECT_UNDEFINED

    serve(meter, body)


def test_gurux_reads_account_credit_and_charge() -> None:
    meter = prepaid_meter(days=1)
    with ServerThread(meter) as server:
        peer = GuruxPeer(server.port, 17, Authentication.LOW, PASSWORD)
        peer.associate()
        account = GXDLMSAccount("0.0.19.0.0.255")
        for attribute in range(2, 20):
            peer.read(account, attribute)
        credit = GXDLMSCredit("0.0.19.10.0.255")
        for attribute in range(2, 12):
            peer.read(credit, attribute)
        charge = GXDLMSCharge("0.0.19.20.0.255")
        for attribute in (2, 3, 4, 5, 8, 9, 10, 12, 13):
            peer.read(charge, attribute)
        peer.release()
    model = meter.credit
    assert model is not None
    assert account.availableCredit == round(model.available * 100)
    assert account.currentCreditStatus & AccountCreditStatus.IN_CREDIT
    assert not account.currentCreditStatus & AccountCreditStatus.OUT_OF_CREDIT
    assert account.creditReferences == ["0.0.19.10.0.255", "0.0.19.10.1.255"]
    assert account.currency.scale == -2
    assert account.lowCreditThreshold == 500
    assert credit.currentCreditAmount == round(model.credit * 100)
    assert credit.warningThreshold == 500
    assert charge.totalAmountPaid == round(model.total_charged * 100)
    assert charge.unitChargeActive.chargePerUnitScaling.commodityScale == -3
    tables = {
        bytes(row.index)[0]: Decimal(row.chargePerUnit).scaleb(
            charge.unitChargeActive.chargePerUnitScaling.priceScale
        )
        for row in charge.unitChargeActive.chargeTables
    }
    assert tables == PRICES
    assert charge.period == 0
