"""The composition root: settings -> engine -> session factory -> config, built once per process."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from bot.settings import Settings
from insights.config import Config, load_config
from insights.errors import UserError
from storage.engine import make_engine, make_session_factory, redacted
from storage.repositories import WorkspaceRepository
from storage.schema import ensure_schema

LOCAL_TEAM = "local"


class DatabaseUnavailableError(UserError):
    pass


@dataclass(frozen=True)
class AppContext:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    config: Config
    team_id: str


def database_error(url: str, exc: DBAPIError) -> DatabaseUnavailableError:
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
    return DatabaseUnavailableError(
        f"cannot use the database {redacted(url)}: {reason[:200]}; check DATABASE_URL"
    )


def connect(settings: Settings) -> tuple[Engine, sessionmaker[Session]]:
    """Open the database and make sure its schema is current.

    The embedded SQLite default is created and upgraded automatically; a server database is
    upgraded only by `icp-bot db upgrade`, so that replicas never race to migrate it.
    """
    engine = make_engine(settings.database_url)
    try:
        ensure_schema(engine, auto_upgrade=engine.dialect.name == "sqlite")
    except DBAPIError as exc:
        engine.dispose()
        raise database_error(settings.database_url, exc) from None
    except Exception:
        engine.dispose()
        raise
    return engine, make_session_factory(engine)


def resolve_team(session_factory: sessionmaker[Session], requested: str | None) -> str:
    """The workspace the CLI works on: --team / ICP_BOT_TEAM_ID, else the only one, else local."""
    if requested:
        return requested
    with session_factory() as session:
        teams = WorkspaceRepository(session).team_ids()
    if len(teams) == 1:
        return teams[0]
    if len(teams) > 1:
        raise UserError(
            f"this database serves several workspaces ({', '.join(teams[:5])}); "
            "choose one with --team or ICP_BOT_TEAM_ID"
        )
    return LOCAL_TEAM


def build_context(settings: Settings) -> AppContext:
    config = load_config(settings.config_path)  # refuse a bad config before touching anything
    engine, session_factory = connect(settings)
    try:
        team_id = resolve_team(session_factory, settings.team_id)
    except DBAPIError as exc:
        raise database_error(settings.database_url, exc) from None
    return AppContext(settings, engine, session_factory, config, team_id)
