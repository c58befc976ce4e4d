"""The meter's configuration: what a meter maker or a utility sets before installation.

Everything is validated once, at construction; the device model then trusts it.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from meterstack.core.errors import ConfigError, InvalidInputError
from meterstack.core.ids import validate_serial
from meterstack.core.time import zone
from meterstack.sts.ea import DecoderKeyGenerationAlgorithm, EncryptionAlgorithm
from meterstack.sts.keys import KeyParameters
from meterstack.sts.tid import BaseDate

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_MMDD = re.compile(r"^(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")

CapturePeriod = Literal[900, 1800, 3600]


def seconds_of_day(hhmm: str) -> int:
    """``"07:30"`` -> 27000."""
    hours, minutes = hhmm.split(":")
    return int(hours) * 3600 + int(minutes) * 60


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RateSwitch(_Model):
    """From local time ``start`` the day runs on tariff rate ``rate`` (1-based)."""

    start: str
    rate: int = Field(ge=1, le=8)

    @field_validator("start")
    @classmethod
    def _time(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError("local time as HH:MM, 00:00-23:59")
        return value


class Season(_Model):
    """From ``start`` (MM-DD, local) every year, days follow ``week_profile``."""

    start: str
    week_profile: str

    @field_validator("start")
    @classmethod
    def _month_day(cls, value: str) -> str:
        if not _MMDD.match(value):
            raise ValueError("month and day as MM-DD")
        return value


class TouCalendarConfig(_Model):
    """A time-of-use calendar shaped like the DLMS activity calendar (interface class 20).

    Seasons select a week profile; a week profile names a day profile for each weekday
    (Monday first); a day profile lists rate switches from 00:00; special days (holidays)
    override the week with a day profile of their own.
    """

    seasons: list[Season] = Field(min_length=1)
    week_profiles: dict[str, list[str]]
    day_profiles: dict[str, list[RateSwitch]]
    special_days: dict[date, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        starts = [season.start for season in self.seasons]
        if len(set(starts)) != len(starts):
            raise ValueError("two seasons start on the same day")
        for season in self.seasons:
            if season.week_profile not in self.week_profiles:
                raise ValueError(
                    f"season {season.start} names unknown week profile {season.week_profile!r}"
                )
        for name, days in self.week_profiles.items():
            if len(days) != 7:
                raise ValueError(f"week profile {name!r} must name 7 day profiles, Monday first")
            for day in days:
                if day not in self.day_profiles:
                    raise ValueError(f"week profile {name!r} names unknown day profile {day!r}")
        for name, switches in self.day_profiles.items():
            if not switches or switches[0].start != "00:00":
                raise ValueError(f"day profile {name!r} must start with a switch at 00:00")
            times = [seconds_of_day(s.start) for s in switches]
            if times != sorted(set(times)):
                raise ValueError(f"day profile {name!r}: switch times must increase")
        for special_day, profile in self.special_days.items():
            if profile not in self.day_profiles:
                raise ValueError(f"special day {special_day} names unknown day profile {profile!r}")
        return self

    @property
    def rates(self) -> int:
        """The highest rate number used."""
        return max(s.rate for switches in self.day_profiles.values() for s in switches)


class FriendlyWindow(_Model):
    """A daily local-time window in which a prepaid supply is never disconnected.

    ``end`` before ``start`` wraps past midnight (``18:00``-``08:00``).
    """

    start: str
    end: str

    @field_validator("start", "end")
    @classmethod
    def _time(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError("local time as HH:MM")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.start == self.end:
            raise ValueError("a friendly window needs different start and end times")
        return self


class FriendlyCalendar(_Model):
    """When a prepaid supply stays on whatever the credit: use accrues as debt."""

    daily: list[FriendlyWindow] = Field(default_factory=list)
    weekends: bool = False
    holidays: list[date] = Field(default_factory=list)


Money = Annotated[Decimal, Field(max_digits=18, decimal_places=6)]


class PrepaidConfig(_Model):
    """Prepayment: credit held on the meter, in money or in kWh.

    In ``money`` mode, ``price_per_kwh`` maps each tariff rate to its price; in ``energy``
    mode credit is kWh and decrements one for one.
    """

    mode: Literal["money", "energy"] = "money"
    price_per_kwh: dict[int, Money] = Field(default_factory=lambda: {1: Decimal("0.20")})
    initial_credit: Money = Decimal(0)
    low_credit_threshold: Money = Field(default=Decimal(5), ge=0)
    low_credit_trip: bool = Field(
        default=True,
        description="open the relay once when credit first falls below the threshold",
    )
    emergency_credit: Money = Field(default=Decimal(0), ge=0)
    friendly: FriendlyCalendar = FriendlyCalendar()
    debt_recovery_pct: Money = Field(default=Decimal(0), ge=0, le=100)
    initial_debt: Money = Field(default=Decimal(0), ge=0)
    standing_charge_per_day: Money = Field(default=Decimal(0), ge=0)

    @model_validator(mode="after")
    def _units(self) -> Self:
        if self.mode == "energy" and self.standing_charge_per_day:
            raise ValueError("a standing charge is money: it needs mode 'money'")
        return self

    @field_validator("price_per_kwh")
    @classmethod
    def _prices(cls, value: dict[int, Decimal]) -> dict[int, Decimal]:
        if not value:
            raise ValueError("at least one rate needs a price")
        for rate, price in value.items():
            if not 1 <= rate <= 8:
                raise ValueError(f"rate {rate} is outside 1-8")
            if price < 0:
                raise ValueError(f"price of rate {rate} is negative")
        return value


class LimiterConfig(_Model):
    """The maximum-power limiter (DLMS interface class 71)."""

    threshold_w: float = Field(gt=0)
    min_over_threshold_s: float = Field(default=60, ge=0)
    backoff_s: float = Field(default=300, ge=0, description="delay before automatic restore")
    auto_restore: bool = True


class StsConfig(_Model):
    """The meter's STS token gateway (IEC 62055-41 tokens, DLMS token gateway semantics).

    The decoder key is never written here in clear: ``decoder_key`` holds it sealed with
    :func:`meterstack.sts.seal_decoder_key` under a key-encryption key (KEK) for this
    meter's serial and these key parameters. The KEK itself is not configuration: whoever
    builds the :class:`~meterstack.meter.Meter` hands it in (``key_encryption_key``).
    """

    decoder_key: str = Field(
        min_length=10, description="the decoder key sealed under the KEK ('msk1:...')"
    )
    supply_group_code: str = Field(pattern=r"^[0-9]{6}$")
    tariff_index: str = Field(default="01", pattern=r"^[0-9]{2}$")
    key_revision_number: int = Field(default=1, ge=1, le=9)
    key_type: int = Field(
        default=2, ge=0, le=3, description="0 DITK, 1 DDTK, 2 DUTK (unique), 3 DCTK (common)"
    )
    key_expiry_number: int = Field(default=255, ge=0, le=255)
    base_date: Literal[1993, 2014, 2035] = 1993
    ea: Literal["07", "09", "11"] = "07"
    dkga: Literal["02", "04"] = "02"
    timezone: str | None = Field(
        default=None, description="the utility's time zone for TIDs (default: the meter's)"
    )
    manufacturer_code: int = Field(default=0, ge=0, le=0xFFFF)
    tid_memory: int = Field(default=50, ge=50, le=10_000, description="TIDs remembered")
    credit_limit: Money = Field(
        default=Decimal(1_000_000), gt=0, description="credit above this is an overflow"
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                zone(value)
            except ConfigError as exc:
                raise ValueError(str(exc)) from exc
        return value

    @model_validator(mode="after")
    def _key_parameters(self) -> Self:
        try:
            self.key_parameters()
        except InvalidInputError as exc:
            raise ValueError(str(exc)) from exc
        return self

    def key_parameters(self) -> KeyParameters:
        """The public parameters of the configured decoder key."""
        return KeyParameters(
            supply_group_code=self.supply_group_code,
            tariff_index=self.tariff_index,
            key_revision_number=self.key_revision_number,
            key_type=self.key_type,
            key_expiry_number=self.key_expiry_number,
            base_date=BaseDate(self.base_date),
            ea=EncryptionAlgorithm(self.ea),
            dkga=DecoderKeyGenerationAlgorithm(self.dkga),
        )


class DemandConfig(_Model):
    """Demand measurement: block (``subperiods == 1``) or sliding windows."""

    period_s: CapturePeriod = 1800
    subperiods: int = Field(default=1, ge=1, le=15)

    @model_validator(mode="after")
    def _divides(self) -> Self:
        if self.period_s % self.subperiods or (self.period_s // self.subperiods) % 60:
            raise ValueError("the demand period must split into whole-minute subperiods")
        return self


class Thresholds(_Model):
    """Limits that turn measurements into events (one event per transition)."""

    over_voltage_pct: float = Field(default=10, gt=0)
    under_voltage_pct: float = Field(default=10, gt=0, lt=100)
    hysteresis_pct: float = Field(default=2, ge=0)
    missing_voltage_pct: float = Field(default=50, gt=0, lt=100)
    power_fail_pct: float = Field(
        default=40, gt=0, lt=100, description="below this on every phase the meter is unpowered"
    )
    max_current_a: float = Field(default=100, gt=0, description="overload above this")
    starting_current_a: float = Field(default=0.02, gt=0)
    reverse_power_w: float = Field(default=20, ge=0)


class MeterConfig(_Model):
    """Everything fixed about one meter."""

    serial: str
    phases: Literal[1, 3] = 1
    nominal_voltage_v: float = Field(default=230, gt=0)
    nominal_frequency_hz: Literal[50, 60] = 50
    accuracy_class: Literal["0.2S", "0.5S", "1", "2"] = "1"
    meter_constant_imp_per_kwh: int = Field(default=1000, gt=0)
    customer_name: str = ""
    customer_address: str = ""
    timezone: str = "UTC"
    capture_period_s: CapturePeriod = 1800
    profile_capacity_days: int = Field(default=60, ge=1, le=3660)
    event_log_capacity: int = Field(default=200, ge=1)
    demand: DemandConfig = DemandConfig()
    tou: TouCalendarConfig | None = None
    thresholds: Thresholds = Thresholds()
    export_expected: bool = Field(
        default=False, description="a generator is registered here, so export is no tamper"
    )
    relay_control_mode: int = Field(default=5, ge=0, le=6)
    disconnect_on_tamper: bool = False
    prepaid: PrepaidConfig | None = None
    limiter: LimiterConfig | None = None
    sts: StsConfig | None = None
    billing_reset_day: int | None = Field(
        default=None, ge=1, le=28, description="automatic monthly billing reset at 00:00 local"
    )
    checkpoint_every_captures: int = Field(default=1, ge=1)
    calibration_error_pct: float = Field(
        default=0.0, ge=-50, le=50, description="simulated gain error of the measuring element"
    )

    @field_validator("serial")
    @classmethod
    def _serial(cls, value: str) -> str:
        validate_serial(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zone(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from exc
        return value

    @model_validator(mode="after")
    def _prices_cover_rates(self) -> Self:
        rates = self.tou.rates if self.tou is not None else 1
        if self.prepaid is not None and self.prepaid.mode == "money":
            missing = [r for r in range(1, rates + 1) if r not in self.prepaid.price_per_kwh]
            if missing:
                raise ValueError(f"prepaid price_per_kwh has no price for rate(s) {missing}")
        return self

    @property
    def rates(self) -> int:
        return self.tou.rates if self.tou is not None else 1

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> MeterConfig:
        """Validate ``raw`` (e.g. a TOML table); raise :class:`ConfigError` naming the field."""
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'meter'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ConfigError(f"invalid meter configuration: {problems}") from exc
