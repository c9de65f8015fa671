"""Engine and session factories: the one place that knows database URLs and dialect settings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_DATABASE_URL = "sqlite:///icp-bot.db"


class DatabaseURLError(ValueError):
    """The database URL cannot be used; the message says what to set."""


def normalize_database_url(url: str) -> URL:
    """Accept the URL forms hosting platforms hand out.

    `postgres://` and `postgresql://` select the psycopg 3 driver (the one this project installs);
    an explicit driver (`postgresql+psycopg2://`) is kept as given.
    """
    text = url.strip()
    if text.startswith("postgres://"):
        text = "postgresql://" + text[len("postgres://") :]
    try:
        parsed = make_url(text)
    except ArgumentError:
        shown = text.split("@")[-1] if "@" in text else text
        raise DatabaseURLError(
            f"DATABASE_URL '{shown}' is not a database URL "
            "(use e.g. sqlite:///icp-bot.db or postgresql://user@host:5432/dbname)"
        ) from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise DatabaseURLError(
            f"DATABASE_URL uses '{parsed.get_backend_name()}'; icp-bot supports sqlite and postgresql"
        )
    return parsed


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the digest job read while capture writes; foreign keys are off by default in SQLite.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


# SQLite's page cache while a large import writes, in KiB: a million new notes and their index
# pages fit, which halves the time SQLite takes to write them (the default cache is 2 MB).
BULK_WRITE_CACHE_KIB = 262_144


@contextmanager
def bulk_write_cache(connection: Connection) -> Iterator[None]:
    """On SQLite, a large page cache for this connection while a bulk write runs (restored
    afterwards); on PostgreSQL nothing: the server's shared buffers serve."""
    if connection.dialect.name != "sqlite":
        yield
        return
    previous = int(connection.exec_driver_sql("PRAGMA cache_size").scalar() or 0)
    connection.exec_driver_sql(f"PRAGMA cache_size = -{BULK_WRITE_CACHE_KIB}")
    try:
        yield
    finally:
        with suppress(SQLAlchemyError):  # a broken connection is discarded anyway
            connection.exec_driver_sql(f"PRAGMA cache_size = {previous}")


def make_engine(url: str | URL, **kwargs: Any) -> Engine:
    """Create an engine with the project's settings for SQLite (WAL, foreign keys) or PostgreSQL."""
    parsed = normalize_database_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    connect_args = kwargs.pop("connect_args", {})
    connect_args.setdefault("connect_timeout", 5)
    return create_engine(parsed, connect_args=connect_args, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def redacted(url: str | URL) -> str:
    """The URL without its password, for messages and logs."""
    parsed = normalize_database_url(url) if isinstance(url, str) else url
    return parsed.render_as_string(hide_password=True)
