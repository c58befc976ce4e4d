"""``meterstack sts``: issue and decode STS (IEC 62055-41) prepaid tokens.

The vending key given with ``--vending-key`` is used to derive the meter's decoder key and
is never printed, logged or repeated in an error message; neither is the decoder key.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import typer

from meterstack.cli.app import app
from meterstack.core.errors import InvalidInputError
from meterstack.sts import (
    BaseDate,
    CreditKind,
    CreditToken,
    DecoderKeyGenerationAlgorithm,
    EncryptionAlgorithm,
    IssuedToken,
    KeyParameters,
    ManagementKind,
    ManagementToken,
    MeterPan,
    MeterRecord,
    TokenClass,
    TokenIssuer,
    VendingKey,
    decode_token,
    local_time_of_tid,
    meter_test_token,
    parse_token_digits,
    remove_class,
)

sts = typer.Typer(
    name="sts",
    help="Issue and decode STS (IEC 62055-41) prepaid tokens.",
    no_args_is_help=True,
)
app.add_typer(sts, name="sts")


class StsFlagError(InvalidInputError):
    """A command-line flag of ``meterstack sts`` has a value that cannot be used."""

    hint = "correct the flag named above; `meterstack sts issue --help` lists them"


_FLAGS = {
    "amount": "--amount",
    "sgc": "--sgc",
    "ti": "--ti",
    "krn": "--krn",
    "key_type": "--key-type",
    "ken": "--ken",
    "base_date": "--base-date",
    "ea": "--ea",
    "dkga": "--dkga",
    "pan": "--pan",
    "iin": "--iin",
    "drn": "--drn",
    "digits": "--pan",
    "rnd": "--rnd",
    "time": "--time",
    "vending_key": "--vending-key",
    "control": "--control",
    "manufacturer_code": "--manufacturer-code",
    "subclass": "--subclass",
    "class": "--class",
    "new_base_date": "--rollover",
    "new_key_type": "--new-key-type",
    "token": "TOKEN",
}


def _flag_error(exc: InvalidInputError, prefix: str = "") -> StsFlagError:
    name = exc.field if not prefix else f"{prefix}{exc.field}"
    flag = _FLAGS.get(name, "--" + name.replace("_", "-"))
    value = "<hidden>" if flag == "--vending-key" else exc.value
    return StsFlagError(flag, value, exc.reason)


# Shared options (the same flags for issue and decode).
_VENDING_KEY = typer.Option(None, "--vending-key", help="Vending key, hex (never printed).")
_IIN = typer.Option("600727", "--iin", help="Issuer identification number.")
_DRN = typer.Option(None, "--drn", help="Decoder reference number (meter number).")
_PAN = typer.Option(None, "--pan", help="18-digit meter PAN (instead of --iin/--drn).")
_KEY_TYPE = typer.Option(2, "--key-type", help="Key type: 0 DITK, 1 DDTK, 2 DUTK, 3 DCTK.")
_SGC = typer.Option(None, "--sgc", help="Supply group code (6 digits).")
_TI = typer.Option("01", "--ti", help="Tariff index (2 digits).")
_KRN = typer.Option(1, "--krn", help="Key revision number (1-9).")
_KEN = typer.Option(255, "--ken", help="Key expiry number (0-255).")
_BASE_DATE = typer.Option("1993", "--base-date", help="Base date: 1993, 2014 or 2035.")
_EA = typer.Option("07", "--ea", help="Encryption algorithm: 07 (STA), 09 (DES), 11 (MISTY1).")
_DKGA = typer.Option("02", "--dkga", help="Decoder key generation algorithm: 02 or 04.")
_TIMEZONE = typer.Option(
    "UTC", "--timezone", help="The utility's time zone (for --time with an offset)."
)


def _record(
    *,
    pan: str | None,
    iin: str,
    drn: str | None,
    key_type: int,
    sgc: str | None,
    ti: str,
    krn: int,
    ken: int,
    base_date: str,
    ea: str,
    dkga: str,
) -> MeterRecord:
    try:
        if pan is not None:
            meter_pan = MeterPan.parse(pan)
        elif drn is None:
            raise StsFlagError("--drn", None, "give --drn (with --iin) or --pan")
        else:
            meter_pan = MeterPan(iin, drn)
        if sgc is None:
            raise StsFlagError("--sgc", None, "the supply group code is required")
        keys = KeyParameters(
            supply_group_code=sgc,
            tariff_index=ti,
            key_revision_number=krn,
            key_type=key_type,
            key_expiry_number=ken,
            base_date=BaseDate.parse(base_date),
            ea=EncryptionAlgorithm.parse(ea),
            dkga=DecoderKeyGenerationAlgorithm.parse(dkga),
        )
    except StsFlagError:
        raise
    except InvalidInputError as exc:
        raise _flag_error(exc) from None
    return MeterRecord(meter_pan, keys)


def _issuer(vending_key: str | None, timezone: str) -> TokenIssuer:
    if vending_key is None:
        raise StsFlagError("--vending-key", None, "this token is encrypted: give the vending key")
    try:
        return TokenIssuer(VendingKey.from_hex(vending_key), timezone)
    except InvalidInputError as exc:
        raise _flag_error(exc) from None


def _time(text: str | None) -> datetime:
    if text is None:
        raise StsFlagError("--time", None, "give the time of issue, e.g. 2004-04-01T00:30")
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise StsFlagError("--time", text, "use ISO 8601, e.g. 2004-04-01T00:30") from None


def _decimal(text: str | None, flag: str = "--amount") -> Decimal:
    if text is None:
        raise StsFlagError(flag, None, "this token needs an amount")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise StsFlagError(flag, text, "not a number") from None
    if not value.is_finite():
        raise StsFlagError(flag, text, "not a finite number")
    return value


def _whole(text: str | None, flag: str = "--amount") -> int:
    value = _decimal(text, flag)
    if value != value.to_integral_value():
        raise StsFlagError(flag, text, "a whole number is needed here")
    return int(value)


def _issue_one(
    issuer: TokenIssuer,
    meter: MeterRecord,
    *,
    token_class: int,
    subclass: int,
    amount: str | None,
    at: datetime,
    rnd: int | None,
) -> IssuedToken:
    if token_class == 0:
        try:
            kind = CreditKind(subclass)
        except ValueError:
            raise StsFlagError("--subclass", subclass, "class 0 subclasses are 0-7") from None
        return issuer.credit(meter, _decimal(amount), at, kind=kind, rnd=rnd)
    try:
        kind_2 = ManagementKind(subclass)
    except ValueError:
        raise StsFlagError("--subclass", subclass, "class 2 subclasses are 0-9") from None
    if kind_2.is_key_change:
        raise StsFlagError(
            "--subclass", subclass, "for key change tokens give --new-sgc/--new-ti/--new-krn"
        )
    if kind_2 in (
        ManagementKind.SET_MAXIMUM_POWER_LIMIT,
        ManagementKind.SET_MAXIMUM_PHASE_POWER_UNBALANCE_LIMIT,
    ):
        watts = _whole(amount)
        if kind_2 is ManagementKind.SET_MAXIMUM_POWER_LIMIT:
            return issuer.maximum_power_limit(meter, watts, at, rnd=rnd)
        return issuer.maximum_phase_power_unbalance_limit(meter, watts, at, rnd=rnd)
    if kind_2 is ManagementKind.CLEAR_CREDIT:
        register = 0xFFFF if amount is None else _whole(amount)
        return issuer.clear_credit(meter, at, register=register, rnd=rnd)
    value = 0 if amount is None else _whole(amount)
    return issuer.management(meter, kind_2, value, at, rnd=rnd)


def _print(tokens: list[IssuedToken], as_json: bool) -> None:
    if as_json:
        rows = [token.fields() for token in tokens]
        typer.echo(json.dumps(rows[0] if len(rows) == 1 else rows, indent=2))
    else:
        for token in tokens:
            typer.echo(token.digits)


@sts.command("issue")
def issue(
    *,
    vending_key: str | None = _VENDING_KEY,
    iin: str = _IIN,
    drn: str | None = _DRN,
    pan: str | None = _PAN,
    key_type: int = _KEY_TYPE,
    sgc: str | None = _SGC,
    ti: str = _TI,
    krn: int = _KRN,
    ken: int = _KEN,
    base_date: str = _BASE_DATE,
    ea: str = _EA,
    dkga: str = _DKGA,
    token_class: int = typer.Option(0, "--class", help="Token class: 0 credit, 1 test, 2 mgmt."),
    subclass: int = typer.Option(0, "--subclass", help="Token subclass."),
    amount: str | None = typer.Option(
        None, "--amount", help="kWh (credit), W (power limit), register (clear credit)."
    ),
    time: str | None = typer.Option(
        None, "--time", help="Time of issue, local (2004-04-01T00:30) or with an offset."
    ),
    timezone: str = _TIMEZONE,
    rnd: int | None = typer.Option(None, "--rnd", help="Random number 0-15 (default: random)."),
    manufacturer_code: int = typer.Option(0, "--manufacturer-code", help="Class 1 only."),
    control: int | None = typer.Option(None, "--control", help="Class 1 control field."),
    new_sgc: str | None = typer.Option(None, "--new-sgc", help="Key change: new SGC."),
    new_ti: str | None = typer.Option(None, "--new-ti", help="Key change: new tariff index."),
    new_krn: int | None = typer.Option(None, "--new-krn", help="Key change: new KRN."),
    new_key_type: int | None = typer.Option(None, "--new-key-type", help="Key change: new KT."),
    new_ken: int | None = typer.Option(None, "--new-ken", help="Key change: new KEN."),
    rollover: bool = typer.Option(False, "--rollover", help="Key change: TID rollover."),
    as_json: bool = typer.Option(False, "--json", help="Print every field as JSON."),
) -> None:
    """Print the 20-digit token (two or four for a key change)."""
    if token_class == 1:
        if control is None:
            raise StsFlagError("--control", None, "a class 1 test token needs --control")
        try:
            test = meter_test_token(control, manufacturer_code, subclass=subclass)
        except InvalidInputError as exc:
            raise _flag_error(exc) from None
        _print([test], as_json)
        return
    if token_class not in (0, 2):
        raise StsFlagError("--class", token_class, "token classes are 0, 1 and 2")
    meter = _record(
        pan=pan,
        iin=iin,
        drn=drn,
        key_type=key_type,
        sgc=sgc,
        ti=ti,
        krn=krn,
        ken=ken,
        base_date=base_date,
        ea=ea,
        dkga=dkga,
    )
    issuer = _issuer(vending_key, timezone)
    key_change = any(v is not None for v in (new_sgc, new_ti, new_krn, new_key_type, new_ken))
    try:
        if key_change:
            if token_class != 2:
                raise StsFlagError("--class", token_class, "key change tokens are class 2")
            tokens = list(
                _key_change(
                    issuer,
                    meter,
                    new_sgc=new_sgc,
                    new_ti=new_ti,
                    new_krn=new_krn,
                    new_key_type=new_key_type,
                    new_ken=new_ken,
                    rollover=rollover,
                )
            )
        else:
            at = _time(time)
            tokens = [
                _issue_one(
                    issuer,
                    meter,
                    token_class=token_class,
                    subclass=subclass,
                    amount=amount,
                    at=at,
                    rnd=rnd,
                )
            ]
    except StsFlagError:
        raise
    except InvalidInputError as exc:
        raise _flag_error(exc) from None
    _print(tokens, as_json)


def _key_change(
    issuer: TokenIssuer,
    meter: MeterRecord,
    *,
    new_sgc: str | None,
    new_ti: str | None,
    new_krn: int | None,
    new_key_type: int | None,
    new_ken: int | None,
    rollover: bool,
) -> tuple[IssuedToken, ...]:
    current = meter.keys
    try:
        new_keys = KeyParameters(
            supply_group_code=new_sgc if new_sgc is not None else current.supply_group_code,
            tariff_index=new_ti if new_ti is not None else current.tariff_index,
            key_revision_number=new_krn if new_krn is not None else current.key_revision_number,
            key_type=new_key_type if new_key_type is not None else current.key_type,
            key_expiry_number=new_ken if new_ken is not None else current.key_expiry_number,
            base_date=current.base_date.next() if rollover else current.base_date,
            ea=current.ea,
            dkga=current.dkga,
        )
    except InvalidInputError as exc:
        raise _flag_error(exc, "new_") from None
    return issuer.key_change(meter, new_keys, rollover=rollover)


@sts.command("decode")
def decode(
    token: str = typer.Argument(..., help="The 20-digit token (spaces and dashes ignored)."),
    *,
    vending_key: str | None = _VENDING_KEY,
    iin: str = _IIN,
    drn: str | None = _DRN,
    pan: str | None = _PAN,
    key_type: int = _KEY_TYPE,
    sgc: str | None = _SGC,
    ti: str = _TI,
    krn: int = _KRN,
    ken: int = _KEN,
    base_date: str = _BASE_DATE,
    ea: str = _EA,
    dkga: str = _DKGA,
) -> None:
    """Print what TOKEN decodes to under the meter's key, as JSON."""
    try:
        token_class, _ = remove_class(parse_token_digits(token))
        if token_class == TokenClass.NON_METER_SPECIFIC:
            decoded = decode_token(token, None, EncryptionAlgorithm.EA07)
            base = BaseDate.parse(base_date)
        else:
            meter = _record(
                pan=pan,
                iin=iin,
                drn=drn,
                key_type=key_type,
                sgc=sgc,
                ti=ti,
                krn=krn,
                ken=ken,
                base_date=base_date,
                ea=ea,
                dkga=dkga,
            )
            issuer = _issuer(vending_key, "UTC")
            decoded = issuer.decode(meter, token)
            base = meter.keys.base_date
    except StsFlagError:
        raise
    except InvalidInputError as exc:
        raise _flag_error(exc) from None
    out: dict[str, Any] = {
        "class": decoded.token_class,
        "subclass": decoded.subclass,
        "crc_ok": decoded.crc_ok,
    }
    fields = decoded.token
    if fields is not None:
        out.update(fields.fields())
        if isinstance(fields, CreditToken | ManagementToken):
            out["time"] = local_time_of_tid(fields.tid, base).isoformat(timespec="minutes")
    typer.echo(json.dumps(out, indent=2))
