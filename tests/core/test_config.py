from pathlib import Path

import pytest

from meterstack.core import ConfigError
from meterstack.core.config import load_settings


def test_defaults_are_the_embedded_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("METERSTACK_CONFIG", raising=False)
    settings = load_settings()
    assert settings.timezone == "UTC"
    assert settings.demo.meters == 200
    assert settings.demo.days == 31


def test_file_then_environment_then_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "site.toml"
    path.write_text(
        'timezone = "Africa/Johannesburg"\ncurrency = "ZAR"\n[demo]\nmeters = 50\ndays = 7\n'
    )
    monkeypatch.setenv("METERSTACK_DEMO__DAYS", "3")
    settings = load_settings(path)
    assert settings.timezone == "Africa/Johannesburg"
    assert settings.currency == "ZAR"
    assert settings.demo.meters == 50
    assert settings.demo.days == 3  # the environment beats the file
    assert load_settings(path, currency="EUR").currency == "EUR"  # code beats both


def test_config_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "other.toml"
    path.write_text("[demo]\nmeters = 9\n")
    monkeypatch.setenv("METERSTACK_CONFIG", str(path))
    assert load_settings().demo.meters == 9


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ("timezone = 'Nowhere/City'\n", "timezone"),
        ("[demo]\nmeters = 0\n", "demo.meters"),
        ("colour = 'blue'\n", "colour"),
        ("timezone = \n", "not valid TOML"),
    ],
)
def test_bad_configuration_names_the_problem(tmp_path: Path, content: str, named: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert named in str(caught.value)
    assert str(path) in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "absent.toml")


def test_errors_cross_process_boundaries() -> None:
    import pickle

    from meterstack.core import ClockError, CommandRefusedError, MeasurementError

    for error in (
        MeasurementError("voltage_v[1]", float("inf"), "must be finite"),
        ClockError("at", "x", "naive"),
        CommandRefusedError("manual_reconnect", "credit exhausted"),
        ConfigError("bad file"),
    ):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error)
        assert str(copy) == str(error)
        assert vars(copy) == vars(error)


# -- [mdm] ---------------------------------------------------------------------------------


def test_mdm_defaults_live_under_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from meterstack.mdm.intervals import DuckDBIntervalStore
    from meterstack.mdm.stores import open_interval_store, operational_url

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("METERSTACK_CONFIG", raising=False)
    monkeypatch.setenv("METERSTACK_DATA_DIR", str(tmp_path / "site"))
    settings = load_settings()
    mdm = settings.mdm
    assert (mdm.operational_url, mdm.interval_url, mdm.duckdb_file, mdm.archive_dir) == (
        None,
        None,
        None,
        None,
    )
    assert (mdm.interval_backend, mdm.interval_schema, mdm.vee_history_days) == (
        "duckdb",
        "meterstack",
        28,
    )
    assert operational_url(settings) == f"sqlite:///{(tmp_path / 'site' / 'operational.db')}"
    store = open_interval_store(settings)
    try:
        assert isinstance(store, DuckDBIntervalStore)
        assert Path(store.path) == tmp_path / "site" / "intervals.duckdb"
    finally:
        store.close()


def test_mdm_values_from_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("METERSTACK_MDM__VEE_HISTORY_DAYS", raising=False)
    path = tmp_path / "site.toml"
    path.write_text(
        "[mdm]\n"
        'operational_url = "postgresql+psycopg://mdm@db:5432/ops"\n'
        'interval_backend = "postgresql"\n'
        'interval_url = "postgresql://mdm@db:5432/intervals"\n'
        'interval_schema = "site_a"\n'
        f'archive_dir = "{tmp_path / "archive"}"\n'
        "vee_history_days = 35\n"
    )
    mdm = load_settings(path).mdm
    assert mdm.operational_url == "postgresql+psycopg://mdm@db:5432/ops"
    assert mdm.interval_backend == "postgresql"
    assert mdm.interval_url == "postgresql://mdm@db:5432/intervals"
    assert mdm.interval_schema == "site_a"
    assert mdm.archive_dir == tmp_path / "archive"
    assert mdm.vee_history_days == 35


def test_mdm_environment_beats_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "site.toml"
    path.write_text('[mdm]\nvee_history_days = 35\ninterval_schema = "site_a"\n')
    monkeypatch.setenv("METERSTACK_MDM__VEE_HISTORY_DAYS", "60")
    monkeypatch.setenv("METERSTACK_MDM__DUCKDB_FILE", str(tmp_path / "x.duckdb"))
    mdm = load_settings(path).mdm
    assert mdm.vee_history_days == 60
    assert mdm.duckdb_file == tmp_path / "x.duckdb"
    assert mdm.interval_schema == "site_a"  # not overridden: the file's value stays


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ("[mdm]\nvee_history_days = 3\n", "mdm.vee_history_days"),
        ("[mdm]\ninterval_backend = 'oracle'\n", "mdm.interval_backend"),
        ("[mdm]\noperational_url = 'ops.db'\n", "mdm.operational_url"),
        ("[mdm]\ninterval_schema = 'Site-A'\n", "mdm.interval_schema"),
        ("[mdm]\nretention = 5\n", "mdm.retention"),
    ],
)
def test_a_bad_mdm_value_is_named(tmp_path: Path, content: str, named: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert named in str(caught.value)
    assert str(path) in str(caught.value)


def test_a_bad_mdm_value_from_the_environment_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("METERSTACK_CONFIG", raising=False)
    monkeypatch.setenv("METERSTACK_MDM__VEE_HISTORY_DAYS", "a month")
    with pytest.raises(ConfigError, match=r"mdm\.vee_history_days"):
        load_settings()


def test_postgresql_intervals_need_a_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from meterstack.mdm.stores import open_interval_store

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("METERSTACK_CONFIG", raising=False)
    monkeypatch.setenv("METERSTACK_MDM__INTERVAL_BACKEND", "postgresql")
    with pytest.raises(ConfigError, match="interval_url"):
        open_interval_store(load_settings())
