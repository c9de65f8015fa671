"""Shared fixtures: a migrated database on SQLite (always) and PostgreSQL (when configured).

PostgreSQL tests run when TEST_DATABASE_URL names a server (CI sets it and fails if the server
cannot be reached); elsewhere they are skipped with the reason. Each test gets its own schema.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from bot.cli import main
from insights.config import Config, load_config
from insights.service import build_tagger, import_accounts
from insights.tagging import Tagger
from storage.engine import make_engine, make_session_factory, normalize_database_url
from storage.schema import upgrade

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parent.parent
SAMPLE_ACCOUNTS = ROOT / "bot" / "resources" / "sample_accounts.csv"
PG_SKIP_REASON = (
    "PostgreSQL tests need TEST_DATABASE_URL, e.g. "
    "TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test (CI sets it)"
)


def pytest_report_header() -> str:
    url = postgres_url()
    if url is None:
        return f"PostgreSQL: tests skipped. {PG_SKIP_REASON}"
    return f"PostgreSQL: tests run against {normalize_database_url(url).render_as_string(hide_password=True)}"


def postgres_url() -> str | None:
    return os.environ.get("TEST_DATABASE_URL") or None


def postgres_schema_url(schema: str) -> str:
    """A URL for the test server whose connections use `schema` (for subprocess tests)."""
    url = normalize_database_url(postgres_url() or "")
    return url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)


class PostgresSchema:
    """A throwaway schema on the test server, dropped afterwards."""

    def __init__(self) -> None:
        url = postgres_url()
        if url is None:
            pytest.skip(PG_SKIP_REASON)
        self.url = url
        self.name = f"icpbot_test_{uuid.uuid4().hex[:12]}"
        self.admin = make_engine(url)
        with self.admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{self.name}"'))

    @property
    def schema_url(self) -> str:
        return postgres_schema_url(self.name)

    def engine(self) -> Engine:
        return make_engine(self.schema_url)

    def drop(self) -> None:
        with self.admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE'))
        self.admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database URL of each supported kind (schema not created)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    schema = PostgresSchema()
    try:
        yield schema.schema_url
    finally:
        schema.drop()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A migrated database of each supported kind."""
    eng = make_engine(db_url)
    upgrade(eng)
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture(scope="session")
def example_config_path() -> Path:
    return ROOT / "bot" / "resources" / "icp.example.yml"


@pytest.fixture
def config(example_config_path: Path) -> Config:
    """The bundled example config (modules that need another one define their own)."""
    return load_config(example_config_path)


@pytest.fixture
def tagger(session_factory: sessionmaker[Session], config: Config) -> Tagger:
    """The tagger of workspace T1 after importing the bundled sample accounts."""
    import_accounts(session_factory, "T1", SAMPLE_ACCOUNTS.read_bytes(), SAMPLE_ACCOUNTS.name)
    return build_tagger(session_factory, "T1", config.taxonomy)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_url: str) -> Path:
    """A clean working directory with DATABASE_URL set (SQLite, and PostgreSQL when configured)."""
    monkeypatch.chdir(tmp_path)
    for name in ("ICP_BOT_CONFIG", "ICP_BOT_TEAM_ID", "SLACK_BOT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", db_url)
    if not db_url.startswith("sqlite"):
        assert main(["db", "upgrade"]) == 0
    return tmp_path
