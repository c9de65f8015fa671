"""The benchmark's 100,000 accounts, imported once and copied after.

Every part of the benchmark (P1, P2, P3, P4) needs the same accounts in a fresh database. The
real `icp-bot accounts import` takes 20-30 s for them, four parts and two databases over: about
three of the run's fifteen minutes, measuring nothing the benchmark reports. So the first import
of a given export, workspace and schema version runs the command (and reports its time), and its
result is kept: a SQLite file in bench-results/cache/, a template schema on PostgreSQL
(`icpbot_bench_accounts_<key>`, beside the scratch schemas; a template of another key is dropped
when a new one is made). Later parts copy it in a second or two.

    seconds, how = load_accounts(url, export, team, import_command)   # how: "imported" | "copied"
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from storage.engine import make_engine
from storage.schema import head_revision

CACHE = Path(__file__).resolve().parent.parent / "bench-results" / "cache"
# What an account import writes, parents first.
TABLES = ("workspaces", "accounts", "account_aliases", "import_runs")
_TEMPLATE_PREFIX = "icpbot_bench_accounts_"


def cached_export(count: int, cache: Path = CACHE) -> tuple[Path, list[dict[str, str]]]:
    """bench/foundation.py's export of `count` accounts (seed 7), written once to the cache."""
    from bench.foundation import make_export

    path = cache / f"salesforce_accounts_{count}_seed7.csv"
    if path.exists():
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        if len(rows) == count:
            return path, rows
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".partial-{os.getpid()}")
    rows = make_export(partial, count)
    partial.replace(path)
    return path, rows


def template_key(export: Path, team: str) -> str:
    """The same export file (name, size, time), workspace and schema version give the same key."""
    stat = export.stat()
    raw = f"{export.name}:{stat.st_size}:{stat.st_mtime_ns}:{team}:{head_revision()}"
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def load_accounts(
    url: str, export: Path, team: str, import_command: Callable[[], object], cache: Path = CACHE
) -> tuple[float, str]:
    """Give the fresh database at `url` (on PostgreSQL: migrated, its scratch schema first on the
    search path) the accounts `import_command` (which runs `icp-bot accounts import EXPORT` into
    it) gives; from a copy when an earlier import of the same export was kept."""
    started = time.perf_counter()
    key = template_key(export, team)
    if url.startswith("sqlite"):
        how = _sqlite(url, key, import_command, cache)
    else:
        how = _postgres(url, key, import_command)
    return time.perf_counter() - started, how


def _sqlite(url: str, key: str, import_command: Callable[[], object], cache: Path) -> str:
    database = Path(str(make_url(url).database))
    template = cache / f"accounts-{key}.db"
    if template.exists():
        shutil.copyfile(template, database)
        return "copied"
    import_command()
    cache.mkdir(parents=True, exist_ok=True)
    partial = template.with_suffix(f".partial-{os.getpid()}")
    with closing(sqlite3.connect(database)) as source, closing(sqlite3.connect(partial)) as target:
        source.backup(target)  # a consistent copy, whatever the WAL holds
    partial.replace(template)
    return "imported"


def _postgres(url: str, key: str, import_command: Callable[[], object]) -> str:
    engine = make_engine(url)
    template = _TEMPLATE_PREFIX + key
    try:
        with engine.connect() as connection:
            schema = str(connection.execute(text("SELECT current_schema()")).scalar())
            found = connection.execute(
                text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :s"), {"s": template}
            ).first()
        if found is None:
            import_command()
            _keep_template(engine, schema, template)
            return "imported"
        with engine.begin() as connection:
            for table in TABLES:
                connection.execute(text(f'INSERT INTO "{schema}".{table} SELECT * FROM "{template}".{table}'))
                if table != "workspaces":  # the others count their ids with a sequence
                    connection.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('\"{schema}\".{table}', 'id'), "
                            f'(SELECT coalesce(max(id), 0) + 1 FROM "{schema}".{table}), false)'
                        )
                    )
        return "copied"
    finally:
        engine.dispose()


def _keep_template(engine: Engine, schema: str, template: str) -> None:
    """Copy what the import wrote into a new template schema (made under a temporary name and
    renamed, so a half-made template is never used), dropping templates of other keys."""
    building = f"{template}_{os.getpid()}"
    with engine.begin() as connection:
        stale = connection.execute(
            text("SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE :p"),
            {"p": _TEMPLATE_PREFIX.replace("_", r"\_") + "%"},
        ).scalars()
        for name in stale:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        connection.execute(text(f'CREATE SCHEMA "{building}"'))
        for table in TABLES:
            connection.execute(text(f'CREATE TABLE "{building}".{table} AS SELECT * FROM "{schema}".{table}'))
        connection.execute(text(f'ALTER SCHEMA "{building}" RENAME TO "{template}"'))
