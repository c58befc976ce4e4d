"""The Alembic migrations on SQLite and on a real PostgreSQL: they make exactly the schema
the models declare, and they go down to nothing and up again."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, text

from meterstack.mdm.operational import head_revision, migrate, schema_revision
from meterstack.mdm.operational.engine import MIGRATIONS, create_operational_engine
from meterstack.mdm.operational.models import Base

from .conftest import PG, PG_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        e = create_operational_engine(f"sqlite:///{tmp_path / 'op.db'}")
        yield e
        e.dispose()
        return
    schema = request.getfixturevalue("pg_schema") + f"_mig_{uuid.uuid4().hex[:6]}"
    import psycopg

    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    e = create_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    yield e
    e.dispose()


def _downgrade(engine: Engine, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def test_the_migrated_schema_is_the_models_schema(engine: Engine) -> None:
    migrate(engine)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_migrations_go_down_to_nothing_and_up_again(engine: Engine) -> None:
    migrate(engine)
    assert schema_revision(engine) == head_revision()
    _downgrade(engine, "base")
    assert schema_revision(engine) is None
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate(engine)
    assert schema_revision(engine) == head_revision()
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())


def test_the_embedded_database_is_in_wal_mode(tmp_path: Path) -> None:
    engine = create_operational_engine(f"sqlite:///{tmp_path / 'op.db'}")
    migrate(engine)
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()
