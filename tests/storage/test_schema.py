"""Migrations and engine settings, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Engine, inspect, text

from storage.engine import make_engine, normalize_database_url, redacted
from storage.schema import _alembic_config, current_revision, ensure_schema, head_revision, upgrade


def test_upgrade_creates_every_table_and_is_idempotent(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) is None
        before, after = upgrade(engine)
        assert (before, after) == (None, head_revision())
        tables = set(inspect(engine).get_table_names())
        assert {
            "workspaces",
            "accounts",
            "account_aliases",
            "import_runs",
            "alembic_version",
        } <= tables
        assert upgrade(engine) == (head_revision(), head_revision())
    finally:
        engine.dispose()


def test_head_revision_constant_is_the_newest_migration() -> None:
    from alembic.script import ScriptDirectory

    assert ScriptDirectory.from_config(_alembic_config()).get_current_head() == head_revision()


def test_migrations_match_the_models(engine: Engine) -> None:
    """Alembic's autogenerate finds nothing to add: the migration and the models agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from storage.models import Base

    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_downgrade_to_base_and_back(engine: Engine) -> None:
    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    assert "accounts" not in inspect(engine).get_table_names()
    upgrade(engine)
    assert current_revision(engine) == head_revision()


def test_ensure_schema_refuses_to_migrate_a_server_database_unasked(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        try:
            ensure_schema(engine, auto_upgrade=False)
        except RuntimeError as exc:
            assert "icp-bot db upgrade" in str(exc)
        else:
            raise AssertionError("an empty database passed ensure_schema")
        ensure_schema(engine, auto_upgrade=True)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_sqlite_uses_wal_and_foreign_keys(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


def test_hosting_platform_urls_work_as_given() -> None:
    assert normalize_database_url("postgres://u:p@db.example:5432/app").drivername == "postgresql+psycopg"
    assert normalize_database_url("postgresql://u@h/app").drivername == "postgresql+psycopg"
    assert normalize_database_url("postgresql+psycopg2://u@h/app").drivername == "postgresql+psycopg2"
    assert "secret" not in redacted("postgres://user:secret@h/app")
