"""Create or migrate the schema with Alembic, programmatically (no alembic.ini needed).

Checking the schema is on every command's path, so it reads the `alembic_version` table directly
and imports Alembic only when there is something to migrate.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
# The newest revision in storage/migrations/versions; tests/storage/test_schema.py keeps it true.
HEAD_REVISION = "0005"


class SchemaOutOfDateError(RuntimeError):
    """The database needs `icp-bot db upgrade` before this version can use it."""


def _alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    return HEAD_REVISION


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at; None for a database without icp-bot tables."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Migrate the database to the latest revision; returns (revision before, revision after)."""
    before = current_revision(engine)
    if before != HEAD_REVISION:
        from alembic import command

        config = _alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    return before, HEAD_REVISION


def ensure_schema(engine: Engine, *, auto_upgrade: bool) -> None:
    """Make sure the schema is current: upgrade it when allowed, else say what to run."""
    current = current_revision(engine)
    if current == HEAD_REVISION:
        return
    if auto_upgrade:
        upgrade(engine)
        return
    state = "has no icp-bot tables" if current is None else f"is at schema revision {current}"
    raise SchemaOutOfDateError(
        f"the database {state}; run 'icp-bot db upgrade' to bring it to revision {HEAD_REVISION}"
    )
