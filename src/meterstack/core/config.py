"""Configuration: one TOML file plus environment variables, with embedded defaults.

Precedence, highest first: values passed in code, environment variables
(``METERSTACK_`` prefix, ``__`` between nested names, e.g. ``METERSTACK_DEMO__METERS=50``),
the TOML file, then the defaults. The file is the one given to :func:`load_settings`, else
the one named by ``METERSTACK_CONFIG``, else ``meterstack.toml`` in the working directory if
it exists. Every default is the embedded one: no server is needed to run the demo.
"""

from __future__ import annotations

import os
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from meterstack.core.errors import ConfigError
from meterstack.core.time import zone

CONFIG_ENV_VAR = "METERSTACK_CONFIG"
DEFAULT_CONFIG_FILE = Path("meterstack.toml")


class DemoSettings(BaseModel):
    """Defaults of ``meterstack demo``."""

    meters: int = Field(default=200, ge=1, le=1_000_000)
    days: int = Field(default=31, ge=1, le=3660)
    seed: int = 2024
    start: str | None = Field(
        default=None,
        description="first local day of the simulation (YYYY-MM-DD); by default the days "
        "that end today, so that the dashboard shows current data",
    )


class MdmSettings(BaseModel):
    """Storage and VEE of meter data management (``[mdm]``).

    The embedded defaults live under ``data_dir``: a SQLite operational database and a
    DuckDB interval file. In production set ``operational_url`` to a PostgreSQL URL and
    ``interval_backend = "postgresql"`` with ``interval_url``. An unknown key is an error
    (a misspelt setting would otherwise be silently ignored).
    """

    model_config = ConfigDict(extra="forbid")

    operational_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the operational database; default SQLite under data_dir",
    )
    interval_backend: Literal["duckdb", "postgresql"] = "duckdb"
    interval_url: str | None = Field(
        default=None,
        description="PostgreSQL connection URL (libpq form) when interval_backend='postgresql'",
    )
    interval_schema: str = Field(default="meterstack", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    duckdb_file: Path | None = Field(default=None, description="default data_dir/intervals.duckdb")
    archive_dir: Path | None = Field(default=None, description="default data_dir/archive")
    vee_history_days: int = Field(default=28, ge=7, le=366)

    @field_validator("operational_url", "interval_url")
    @classmethod
    def _url_scheme(cls, value: str | None) -> str | None:
        if value is not None and "://" not in value:
            raise ValueError(f"{value!r} is not a URL like postgresql://user@host:5432/db")
        return value


class VendingSettings(BaseModel):
    """Prepaid vending (``[vending]``).

    The STS vending key is a secret: give it as ``vending_key`` (hex; better through the
    ``METERSTACK_VENDING__VENDING_KEY`` environment variable) or in a file
    (``vending_key_file``, hex). Without either, the embedded default creates a random
    64-bit key in ``data_dir/secrets/vending.key`` (mode 0600) on first use. The key is
    never printed, logged or returned by the API.
    """

    model_config = ConfigDict(extra="forbid")

    vending_key: SecretStr | None = None
    vending_key_file: Path | None = Field(
        default=None, description="default data_dir/secrets/vending.key"
    )
    vend_fee: Decimal = Field(default=Decimal(0), ge=0, description="per vend, gross [currency]")
    minimum_vend: Decimal = Field(default=Decimal("1"), gt=0, description="[currency]")
    maximum_vend: Decimal = Field(default=Decimal("100000"), gt=0, description="[currency]")
    low_credit_threshold: Decimal = Field(
        default=Decimal("20"), ge=0, description="account-based prepay notice level [currency]"
    )


class ApiSettings(BaseModel):
    """The REST API (``[api]``): ``meterstack serve``.

    Bearer tokens are HS256 JWTs signed with ``jwt_secret`` (give it through
    ``METERSTACK_API__JWT_SECRET``); without one the embedded default creates a random
    secret in ``data_dir/secrets/jwt.key`` (mode 0600). The rate limiter is a token bucket
    per caller (user, API key, or client address when anonymous): ``rate_limit_per_s``
    tokens a second, at most ``rate_limit_burst`` at once.
    """

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    jwt_secret: SecretStr | None = None
    jwt_secret_file: Path | None = Field(
        default=None, description="default data_dir/secrets/jwt.key"
    )
    token_ttl_s: int = Field(default=3600, ge=60, le=7 * 86400)
    rate_limit_per_s: float = Field(default=50.0, gt=0)
    rate_limit_burst: int = Field(default=100, ge=1)
    page_size: int = Field(default=50, ge=1, le=1000)
    max_page_size: int = Field(default=1000, ge=1, le=100_000)
    webhook_max_attempts: int = Field(default=6, ge=1, le=50)
    webhook_backoff_s: float = Field(default=2.0, gt=0, description="first retry delay [s]")
    webhook_backoff_max_s: float = Field(default=600.0, gt=0)
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    static_dir: Path | None = Field(
        default=None, description="dashboard files; default the package's meterstack/web/static"
    )


class Settings(BaseSettings):
    """Settings of a meterstack installation."""

    model_config = SettingsConfigDict(
        env_prefix="METERSTACK_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    data_dir: Path = Field(default=Path(".meterstack"), description="where embedded stores live")
    timezone: str = Field(default="UTC", description="the utility's local time zone (IANA)")
    currency: str = Field(default="USD", min_length=3, max_length=3)
    demo: DemoSettings = DemoSettings()
    mdm: MdmSettings = MdmSettings()
    vending: VendingSettings = VendingSettings()
    api: ApiSettings = ApiSettings()

    _toml_file: ClassVar[Path | None] = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zone(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from exc
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls._toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=cls._toml_file))
        return tuple(sources)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Load settings from ``config_file`` (or the default places) and the environment.

    Raises
    ------
    ConfigError
        The file is missing, is not valid TOML, or holds a value that is not allowed; the
        message names the file and the field.
    """
    path = _resolve_config_file(config_file)
    if path is not None:
        try:
            with path.open("rb") as handle:
                tomllib.load(handle)
        except FileNotFoundError as exc:
            raise ConfigError(f"configuration file {path} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    bound = type("Settings", (Settings,), {"_toml_file": path})
    try:
        return cast(Settings, bound(**overrides))
    except ValidationError as exc:
        where = f" in {path}" if path is not None else ""
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration{where}: {problems}") from exc


def _resolve_config_file(config_file: Path | None) -> Path | None:
    if config_file is not None:
        return Path(config_file)
    from_env = os.environ.get(CONFIG_ENV_VAR)
    if from_env:
        return Path(from_env)
    if DEFAULT_CONFIG_FILE.is_file():
        return DEFAULT_CONFIG_FILE
    return None
