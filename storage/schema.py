"""Create or migrate the schema with Alembic, programmatically (no alembic.ini needed)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).with_name("migrations")


class SchemaOutOfDateError(RuntimeError):
    """The database needs `icp-bot db upgrade` before this version can use it."""


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@lru_cache(maxsize=1)
def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None, "storage/migrations has no revisions"
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Migrate the database to the latest revision; returns (revision before, revision after)."""
    before = current_revision(engine)
    if before != head_revision():
        config = _alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    return before, head_revision()


def ensure_schema(engine: Engine, *, auto_upgrade: bool) -> None:
    """Make sure the schema is current: upgrade it when allowed, else say what to run."""
    current = current_revision(engine)
    if current == head_revision():
        return
    if auto_upgrade:
        upgrade(engine)
        return
    state = "has no icp-bot tables" if current is None else f"is at schema revision {current}"
    raise SchemaOutOfDateError(
        f"the database {state}; run 'icp-bot db upgrade' to bring it to revision {head_revision()}"
    )
