"""Repositories: every query is scoped to one workspace. They take a Session and never commit."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Connection,
    Integer,
    String,
    Table,
    Text,
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    or_,
    select,
    type_coerce,
    union,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.models import (
    Account,
    AccountAlias,
    Base,
    DigestRun,
    ImportRun,
    Note,
    TaggingExample,
    Workspace,
    utcnow,
)

ACCOUNTS_TABLE = Table("accounts", Base.metadata)  # the Core table behind the Account model
NOTES_TABLE = Table("notes", Base.metadata)
DIGEST_RUNS_TABLE = Table("digest_runs", Base.metadata)

# The account columns a fit check, a listing or an import comparison reads.
ACCOUNT_FIELDS = (
    "name",
    "domain",
    "industry",
    "employees",
    "annual_revenue",
    "country",
    "state",
    "type",
    "owner",
    "arr",
    "salesforce_id",
    "hubspot_id",
    "external_id",
    "extra",
)
# At most this many candidates of a name lookup (the lowest ids) go on to name resolution.
CANDIDATE_LIMIT = 200


class WorkspaceRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get_or_create(self, team_id: str, name: str | None = None) -> Workspace:
        workspace = self.session.get(Workspace, team_id)
        if workspace is None:
            workspace = Workspace(team_id=team_id, name=name, created_at=utcnow())
            self.session.add(workspace)
            self.session.flush()
        return workspace

    def team_ids(self) -> list[str]:
        return list(self.session.scalars(select(Workspace.team_id).order_by(Workspace.team_id)))

    def delete(self, team_id: str) -> bool:
        """Remove a workspace and, by cascade, its accounts, notes, examples and digest runs."""
        result = self.session.execute(delete(Workspace).where(Workspace.team_id == team_id))
        return bool(getattr(result, "rowcount", 0))


class AccountRepository:
    """Accounts of one workspace."""

    def __init__(self, session: Session, team_id: str) -> None:
        self.session = session
        self.team_id = team_id

    def version(self) -> tuple[object, ...]:
        """Counts and high-water marks that change whenever accounts or aliases change."""
        return _account_version(self.session, self.team_id)

    def count(self) -> int:
        query = select(func.count()).select_from(Account).where(Account.team_id == self.team_id)
        return int(self.session.scalar(query) or 0)

    def get(self, account_id: int) -> Account | None:
        account = self.session.get(Account, account_id)
        return account if account is not None and account.team_id == self.team_id else None

    def candidates(
        self,
        *,
        name_key: str,
        compact_key: str,
        domain: str | None,
        first_word: str,
        limit: int = CANDIDATE_LIMIT,
    ) -> list[Account]:
        """Accounts that share any lookup key with a query.

        One indexed equality lookup per key, joined with UNION: an OR across columns would make
        the planner scan the whole workspace.
        """
        team = Account.team_id == self.team_id
        lookups: list[tuple[Any, str]] = [
            (Account.name_key, name_key),
            (Account.compact_key, compact_key),
            (Account.compact_key, name_key.replace(" ", "")),
        ]
        if " " not in name_key and compact_key:
            lookups.append((Account.domain_stem, compact_key))
        if domain:
            lookups.append((Account.domain, domain))
        if first_word:
            lookups.append((Account.first_word, first_word))
        selects = [select(Account.id).where(team, column == value) for column, value in lookups if value]
        selects.append(
            select(AccountAlias.account_id).where(
                AccountAlias.team_id == self.team_id, AccountAlias.alias_key == name_key
            )
        )
        ids = union(*selects).subquery()
        query = select(Account).where(Account.id.in_(select(ids.c[0]))).order_by(Account.id).limit(limit)
        return list(self.session.scalars(query))

    def name_keys(self) -> dict[int, str]:
        """Every account's normalised name, for fuzzy matching."""
        query = select(Account.id, Account.name_key).where(Account.team_id == self.team_id)
        # dict() over whole rows is about a third faster than attribute access on 100,000 rows.
        return dict(self.session.execute(query).all())

    def lookup_rows(self) -> list[tuple[Any, ...]]:
        """(id, name, domain, country, name_key, compact_key, first_word, domain_stem) of every
        account in id order: the stored lookup keys, to find the candidates of many names at once."""
        query = (
            select(
                Account.id,
                Account.name,
                Account.domain,
                Account.country,
                Account.name_key,
                Account.compact_key,
                Account.first_word,
                Account.domain_stem,
            )
            .where(Account.team_id == self.team_id)
            .order_by(Account.id)
        )
        return [tuple(row) for row in self.session.execute(query)]

    def alias_rows(self) -> list[tuple[int, str, str]]:
        """(account id, alias, alias key) of every alias."""
        query = select(AccountAlias.account_id, AccountAlias.alias, AccountAlias.alias_key).where(
            AccountAlias.team_id == self.team_id
        )
        return [(int(a), str(alias), str(key)) for a, alias, key in self.session.execute(query)]

    def fields_of(self, ids: Iterable[int]) -> list[dict[str, Any]]:
        """The fields (canonical and extra) of these accounts, with their `id`."""
        wanted = sorted(set(ids))
        if not wanted:
            return []
        names = ["id", *ACCOUNT_FIELDS]
        listed = _listed(wanted, self.session.get_bind().dialect.name, Integer)
        query = select(*(getattr(Account, f) for f in names)).where(
            Account.team_id == self.team_id, Account.id.in_(listed)
        )
        return [dict(zip(names, row, strict=True)) for row in self.session.execute(query)]

    def refs(self) -> list[tuple[int, str, str | None, str | None]]:
        """(id, name, domain, country) of every account, for building a name index."""
        query = select(Account.id, Account.name, Account.domain, Account.country).where(
            Account.team_id == self.team_id
        )
        return [(row.id, row.name, row.domain, row.country) for row in self.session.execute(query)]

    def all_aliases(self) -> dict[int, list[str]]:
        query = select(AccountAlias.account_id, AccountAlias.alias).where(
            AccountAlias.team_id == self.team_id
        )
        out: dict[int, list[str]] = {}
        for row in self.session.execute(query):
            out.setdefault(row.account_id, []).append(row.alias)
        return out

    def by_ids(self, ids: Sequence[int]) -> list[Account]:
        if not ids:
            return []
        query = select(Account).where(Account.team_id == self.team_id, Account.id.in_(ids))
        return list(self.session.scalars(query))

    def aliases_of(self, ids: Sequence[int]) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        if not ids:
            return out
        query = select(AccountAlias.account_id, AccountAlias.alias).where(
            AccountAlias.team_id == self.team_id, AccountAlias.account_id.in_(ids)
        )
        for row in self.session.execute(query):
            out.setdefault(row.account_id, []).append(row.alias)
        return out

    def match_keys(self) -> list[dict[str, Any]]:
        """Identity and comparison data of every account, for matching an import against."""
        columns = [getattr(Account, f) for f in ACCOUNT_FIELDS]
        query = select(Account.id, Account.name_key, *columns).where(Account.team_id == self.team_id)
        return [dict(row._mapping) for row in self.session.execute(query)]

    def iter_fields(self, batch: int = 5000) -> Iterator[dict[str, Any]]:
        """Every account's fields (canonical and extra), streamed in id order."""
        columns = [getattr(Account, f) for f in ACCOUNT_FIELDS]
        query = (
            select(Account.id, *columns)
            .where(Account.team_id == self.team_id)
            .order_by(Account.id)
            .execution_options(yield_per=batch)
        )
        for row in self.session.execute(query):
            yield dict(row._mapping)

    def insert_many(self, rows: list[dict[str, Any]], *, return_ids: bool = False) -> list[int]:
        """Insert new accounts; with `return_ids`, their ids in the order given.

        Plain executemany is several times faster than INSERT ... RETURNING with ordered
        results, so ids are fetched only when the caller needs them.
        """
        if not rows:
            return []
        now = utcnow()
        values = [{**r, "team_id": self.team_id, "created_at": now, "updated_at": now} for r in rows]
        if not return_ids:
            # A Core insert skips the ORM's per-row bookkeeping (a quarter faster on SQLite).
            self.session.execute(insert(ACCOUNTS_TABLE), values)
            return []
        statement = insert(Account).returning(Account.id, sort_by_parameter_order=True)
        return [row.id for row in self.session.execute(statement, values)]

    def update_many(self, rows: list[dict[str, Any]]) -> None:
        """Update accounts in place by id (each dict holds `id` and the columns to set)."""
        if not rows:
            return
        now = utcnow()
        self.session.execute(update(Account), [{**r, "updated_at": now} for r in rows])

    def add_aliases(self, pairs: Iterable[tuple[int, str, str]], source: str) -> int:
        """Add (account id, alias, alias key) pairs that are not there yet; returns how many."""
        wanted = {(a, k): alias for a, alias, k in pairs if k}
        if not wanted:
            return 0
        query = select(AccountAlias.account_id, AccountAlias.alias_key).where(
            AccountAlias.team_id == self.team_id,
            AccountAlias.account_id.in_({a for a, _ in wanted}),
        )
        existing = {(row.account_id, row.alias_key) for row in self.session.execute(query)}
        now = utcnow()
        new = [
            {
                "team_id": self.team_id,
                "account_id": a,
                "alias": alias,
                "alias_key": k,
                "source": source,
                "created_at": now,
            }
            for (a, k), alias in wanted.items()
            if (a, k) not in existing
        ]
        if new:
            self.session.execute(insert(AccountAlias), new)
        return len(new)

    def delete_all(self) -> int:
        result = self.session.execute(delete(Account).where(Account.team_id == self.team_id))
        return int(getattr(result, "rowcount", 0) or 0)


class ImportRunRepository:
    def __init__(self, session: Session, team_id: str) -> None:
        self.session = session
        self.team_id = team_id

    def record(self, **values: Any) -> None:
        self.session.add(ImportRun(team_id=self.team_id, finished_at=utcnow(), **values))


class TaggingExampleRepository:
    """Labelled messages of one workspace, oldest first."""

    def __init__(self, session: Session, team_id: str) -> None:
        self.session = session
        self.team_id = team_id

    def add_many(self, rows: list[dict[str, Any]]) -> int:
        if not rows:
            return 0
        now = utcnow()
        self.session.execute(
            insert(TaggingExample), [{**r, "team_id": self.team_id, "created_at": now} for r in rows]
        )
        return len(rows)

    def all(self) -> list[TaggingExample]:
        query = (
            select(TaggingExample).where(TaggingExample.team_id == self.team_id).order_by(TaggingExample.id)
        )
        return list(self.session.scalars(query))

    def count(self) -> int:
        query = select(func.count()).select_from(TaggingExample).where(TaggingExample.team_id == self.team_id)
        return int(self.session.scalar(query) or 0)

    # -- privacy and retention ------------------------------------------------------------------

    def _of_person(self, user_id: str) -> Any:
        """Examples a person made (their corrections) or that hold the text of one of their messages."""
        their_texts = select(Note.text).where(Note.team_id == self.team_id, Note.user_id == user_id)
        return and_(
            TaggingExample.team_id == self.team_id,
            or_(TaggingExample.created_by == user_id, TaggingExample.text.in_(their_texts)),
        )

    def count_of_person(self, user_id: str) -> int:
        query = select(func.count()).select_from(TaggingExample).where(self._of_person(user_id))
        return int(self.session.scalar(query) or 0)

    def delete_of_person(self, user_id: str) -> int:
        """Delete them (before the person's notes: their texts are matched against the notes)."""
        statement = delete(TaggingExample).where(self._of_person(user_id))
        result = self.session.execute(statement.execution_options(synchronize_session=False))
        return int(getattr(result, "rowcount", 0) or 0)

    def _corrections_before(self, cutoff: datetime) -> Any:
        # Corrections hold message text; labelled imports (`tag --learn`) are the operator's own data.
        return and_(
            TaggingExample.team_id == self.team_id,
            TaggingExample.source == "correction",
            TaggingExample.created_at < cutoff.astimezone(UTC),
        )

    def count_corrections_before(self, cutoff: datetime) -> int:
        query = select(func.count()).select_from(TaggingExample).where(self._corrections_before(cutoff))
        return int(self.session.scalar(query) or 0)

    def delete_corrections_before(self, cutoff: datetime) -> int:
        statement = delete(TaggingExample).where(self._corrections_before(cutoff))
        result = self.session.execute(statement.execution_options(synchronize_session=False))
        return int(getattr(result, "rowcount", 0) or 0)


def _copy_notes(connection: Connection, names: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """PostgreSQL: COPY `rows` (values of the notes columns `names`) into a temporary table of
    this transaction, then insert them where no note holds their channel + ts yet.

    The rows are written as COPY text here, each distinct value once (psycopg's own per-value
    adaptation took a fifth of a million-deal import): JSON columns as the JSON text of the
    value (None too: JSON null, as SQLAlchemy's JSON type writes it), times in ISO 8601 with
    their offset, numbers as Python prints them, text escaped as COPY reads it.
    """
    if not rows:
        return
    preparer = connection.dialect.identifier_preparer
    columns = ", ".join(preparer.quote(c) for c in names)
    notes = preparer.format_table(NOTES_TABLE)
    # Per column: the COPY text of its values by value, or of its JSON values by identity (kept
    # with the value, so that no other object takes its id meanwhile).
    texts: list[dict[Any, str] | None] = [
        None if isinstance(NOTES_TABLE.c[c].type, JSON) else {} for c in names
    ]
    objects: dict[int, tuple[Any, str]] = {}
    lines: list[str] = []
    for row in rows:
        cells: list[str] = []
        for value, known in zip(row, texts, strict=True):
            if known is None:
                held = objects.get(id(value))
                if held is None:
                    held = objects[id(value)] = (value, _copy_text(json.dumps(value)))
                cells.append(held[1])
                continue
            text = known.get(value)
            if text is None:
                text = known[value] = _copy_text(value)
            cells.append(text)
        lines.append("\t".join(cells))
    lines.append("")
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS notes_incoming ON COMMIT DROP AS "
            f"SELECT {columns} FROM {notes} WITH NO DATA"
        )
        with cursor.copy(f"COPY notes_incoming ({columns}) FROM STDIN") as copy:
            copy.write("\n".join(lines))
        cursor.execute(
            f"INSERT INTO {notes} ({columns}) SELECT {columns} FROM notes_incoming ON CONFLICT DO NOTHING"
        )
        cursor.execute("TRUNCATE notes_incoming")
    finally:
        cursor.close()


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: Any) -> str:
    """One value as COPY's text format writes it."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool | int | float):
        return repr(value)
    raise TypeError(f"no COPY text for {type(value).__name__}")


def _listed(values: Sequence[Any], dialect_name: str, as_type: Any = None) -> Any:
    """A subquery of `values` passed as one parameter, a JSON array the database expands: an IN
    list of thousands of bound values costs more to compile than to run."""
    listed = bindparam("listed", json.dumps(list(values)), type_=String)
    if dialect_name == "postgresql":
        each = func.json_array_elements_text(cast(listed, postgresql.JSON)).table_valued("value")
        return select(cast(each.c.value, as_type) if as_type is not None else each.c.value)
    return select(func.json_each(listed).table_valued("value").c.value)


def _account_version(session: Session, team_id: str) -> tuple[object, ...]:
    accounts = session.execute(
        select(func.count(), func.max(Account.id), func.max(Account.updated_at)).where(
            Account.team_id == team_id
        )
    ).one()
    aliases = session.execute(
        select(func.count(), func.max(AccountAlias.id)).where(AccountAlias.team_id == team_id)
    ).one()
    return (*accounts, *aliases)


class NoteRepository:
    """Captured outcomes of one workspace, keyed by channel + message ts."""

    def __init__(self, session: Session, team_id: str) -> None:
        self.session = session
        self.team_id = team_id

    def texts_at(self, channel: str, stamps: Sequence[str]) -> dict[str, str]:
        """The stored text of each message in `stamps` that is a note (retracted ones too)."""
        rows = self.session.execute(
            select(Note.ts, Note.text).where(
                Note.team_id == self.team_id, Note.channel == channel, Note.ts.in_(list(stamps))
            )
        )
        return {str(ts): str(text) for ts, text in rows}

    def insert_if_absent(self, values: dict[str, Any]) -> tuple[Note, bool]:
        """Insert a note unless one exists for its channel + ts; return it and whether it is new.

        ON CONFLICT DO NOTHING (SQLite and PostgreSQL) keeps concurrent deliveries of one message
        from raising or from writing twice: the loser waits for the winner and finds its row.
        """
        now = utcnow()
        row = {"created_at": now, "updated_at": now, **values, "team_id": self.team_id}
        dialect = self.session.get_bind().dialect.name
        table = NOTES_TABLE
        statement: Any
        if dialect == "postgresql":
            statement = postgresql.insert(table).values(row).on_conflict_do_nothing()
        elif dialect == "sqlite":
            statement = sqlite.insert(table).values(row).on_conflict_do_nothing()
        else:  # pragma: no cover - only SQLite and PostgreSQL are supported
            raise NotImplementedError(dialect)
        new_id = self.session.execute(statement.returning(table.c.id)).scalar()
        note = self.get(str(values["channel"]), str(values["ts"]))
        if note is None:  # pragma: no cover - the row exists by now, whoever wrote it
            raise RuntimeError("note vanished after insert")
        return note, new_id is not None

    def ids_in(self, channel: str) -> dict[str, int]:
        """The id of every note in a channel, by ts."""
        query = select(Note.ts, Note.id).where(Note.team_id == self.team_id, Note.channel == channel)
        return {str(ts): int(note_id) for ts, note_id in self.session.execute(query)}

    def rows_by_id(self, ids: Sequence[int], columns: Sequence[str]) -> list[dict[str, Any]]:
        """These columns (and `id`, `ts`) of the notes with these ids, as plain dicts.

        Looked up by primary key alone, whatever the planner believes of the other columns (a
        large import makes its statistics stale), then kept to this workspace's notes.
        """
        if not ids:
            return []
        table = NOTES_TABLE
        names = ["id", "ts", "team_id", *(c for c in columns if c not in ("id", "ts", "team_id"))]
        if self.session.get_bind().dialect.name == "postgresql":
            listed: Any = table.c.id == func.any(bindparam("ids", list(ids), type_=postgresql.ARRAY(Integer)))
        else:
            listed = table.c.id.in_(_listed(ids, "sqlite"))
        query = select(*(table.c[c] for c in names)).where(listed)
        rows = [dict(zip(names, row, strict=True)) for row in self.session.execute(query)]
        return [row for row in rows if row["team_id"] == self.team_id]

    def insert_rows(self, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """Insert notes of this workspace (each row the values of `columns`), skipping any whose
        channel + ts a note already holds, as a concurrent writer may have written it first.

        Built for large imports. SQLite: one INSERT ... ON CONFLICT DO NOTHING run by the driver's
        executemany, each value bound as its column type binds it (JSON as JSON text, times as
        the dialect stores them), converted once per distinct time and once per JSON object.
        PostgreSQL: COPY into a temporary table, then one INSERT ... SELECT ... ON CONFLICT DO
        NOTHING (several times faster than row by row).
        """
        connection = self.session.connection()
        names = [*columns, "team_id"]
        if connection.dialect.name == "postgresql":
            _copy_notes(connection, names, [(*row, self.team_id) for row in rows])
            return
        dialect = connection.dialect
        processors = [NOTES_TABLE.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in names]
        # Per converted column: its processor, and what it gave for each value (times, None) and
        # for each JSON object by identity (kept with it, so that no other object takes its id).
        specs: list[tuple[int, Any, dict[Any, Any], dict[int, tuple[Any, Any]]]] = [
            (i, p, {}, {}) for i, p in enumerate(processors) if p is not None
        ]
        values: list[tuple[Any, ...]] = []
        for row in rows:
            out = [*row, self.team_id]
            for i, process, by_value, by_object in specs:
                value = out[i]
                if isinstance(value, dict | list):
                    held = by_object.get(id(value))
                    if held is None:
                        held = by_object[id(value)] = (value, process(value))
                    out[i] = held[1]
                elif value in by_value:
                    out[i] = by_value[value]
                else:
                    out[i] = by_value[value] = process(value)
            values.append(tuple(out))
        if not values:
            return
        quote = dialect.identifier_preparer.quote
        sql = (
            f"INSERT INTO {dialect.identifier_preparer.format_table(NOTES_TABLE)} "
            f"({', '.join(quote(c) for c in names)}) VALUES ({', '.join('?' for _ in names)}) "
            "ON CONFLICT DO NOTHING"
        )
        connection.exec_driver_sql(sql, values)

    def update_rows(self, rows: Sequence[dict[str, Any]]) -> None:
        """Set columns of notes of this workspace by id (each dict holds `id` and the columns to set)."""
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in rows:
            groups.setdefault(tuple(sorted(k for k in row if k != "id")), []).append(row)
        table = NOTES_TABLE
        for keys, group in groups.items():
            statement = (
                update(table)
                .where(table.c.id == bindparam("note_id"), table.c.team_id == self.team_id)
                .values({k: bindparam(f"new_{k}") for k in keys})
            )
            self.session.execute(
                statement, [{"note_id": r["id"], **{f"new_{k}": r[k] for k in keys}} for r in group]
            )

    def get(self, channel: str, ts: str) -> Note | None:
        query = select(Note).where(Note.team_id == self.team_id, Note.channel == channel, Note.ts == ts)
        return self.session.scalars(query).one_or_none()

    def by_id(self, note_id: int) -> Note | None:
        note = self.session.get(Note, note_id)
        return note if note is not None and note.team_id == self.team_id else None

    def claim_confirmation(self, note_id: int, now: datetime, stale_before: datetime) -> bool:
        """Atomically take the right to post a note's confirmation.

        True for exactly one caller while no confirmation exists, and again only when an earlier
        claim went stale (its holder died before posting).
        """
        result = self.session.execute(
            update(Note)
            .where(
                Note.id == note_id,
                Note.team_id == self.team_id,
                Note.confirmation_ts.is_(None),
                or_(Note.confirm_claimed_at.is_(None), Note.confirm_claimed_at < stale_before),
            )
            .values(confirm_claimed_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    def set_confirmation(self, note_id: int, ts: str | None) -> None:
        """Record the confirmation's ts, or (None) release the claim so a retry may post it."""
        values: dict[str, Any] = {"confirmation_ts": ts} if ts else {"confirm_claimed_at": None}
        self.session.execute(
            update(Note)
            .where(Note.id == note_id, Note.team_id == self.team_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )

    def counts_by_kind(self, account_id: int) -> dict[str, int]:
        query = (
            select(Note.kind, func.count())
            .where(self._active(), Note.account_id == account_id, Note.kind.is_not(None))
            .group_by(Note.kind)
        )
        return {str(kind): int(n) for kind, n in self.session.execute(query)}

    def latest_for_account(self, account_id: int, limit: int) -> list[Note]:
        query = (
            select(Note)
            .where(self._active(), Note.account_id == account_id, Note.kind.is_not(None))
            .order_by(Note.posted_at.desc(), Note.id.desc())
            .limit(limit)
        )
        return list(self.session.scalars(query))

    def iter_all(self, batch: int = 1000) -> Iterator[Note]:
        query = select(Note).where(Note.team_id == self.team_id).order_by(Note.posted_at, Note.id)
        yield from self.session.scalars(query.execution_options(yield_per=batch))

    def count(self, *, active_only: bool = False) -> int:
        condition = self._active() if active_only else Note.team_id == self.team_id
        return int(self.session.scalar(select(func.count()).select_from(Note).where(condition)) or 0)

    def _active(self) -> Any:
        return and_(Note.team_id == self.team_id, Note.status == "active")

    # -- privacy and retention ------------------------------------------------------------------

    def _by_user(self, user_id: str) -> Any:
        return and_(Note.team_id == self.team_id, Note.user_id == user_id)

    def iter_by_user(self, user_id: str, batch: int = 1000) -> Iterator[Note]:
        """The notes of one person's messages, retracted ones included, oldest first."""
        query = select(Note).where(self._by_user(user_id)).order_by(Note.posted_at, Note.id)
        yield from self.session.scalars(query.execution_options(yield_per=batch))

    def count_by_user(self, user_id: str) -> int:
        query = select(func.count()).select_from(Note).where(self._by_user(user_id))
        return int(self.session.scalar(query) or 0)

    def delete_by_user(self, user_id: str) -> int:
        statement = delete(Note).where(self._by_user(user_id))
        result = self.session.execute(statement.execution_options(synchronize_session=False))
        return int(getattr(result, "rowcount", 0) or 0)

    def count_corrected_by(self, user_id: str) -> int:
        """Other people's notes that name this person as the one who corrected them."""
        query = (
            select(func.count())
            .select_from(Note)
            .where(Note.team_id == self.team_id, Note.corrected_by == user_id)
        )
        return int(self.session.scalar(query) or 0)

    def replace_corrector(self, user_id: str, replacement: str) -> int:
        """Name `replacement` instead of `user_id` as these notes' corrector (the labels stay a person's)."""
        result = self.session.execute(
            update(Note)
            .where(Note.team_id == self.team_id, Note.corrected_by == user_id)
            .values(corrected_by=replacement)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    def _older_than(self, cutoff: datetime) -> Any:
        # Stored times are UTC (SQLite keeps the wall time only): compare in UTC.
        posted = func.coalesce(Note.posted_at, Note.created_at)
        return and_(Note.team_id == self.team_id, posted < cutoff.astimezone(UTC))

    def count_older_than(self, cutoff: datetime) -> int:
        query = select(func.count()).select_from(Note).where(self._older_than(cutoff))
        return int(self.session.scalar(query) or 0)

    def delete_older_than(self, cutoff: datetime) -> int:
        """Delete the notes posted before `cutoff` (their created_at when posted_at is missing)."""
        statement = delete(Note).where(self._older_than(cutoff))
        result = self.session.execute(statement.execution_options(synchronize_session=False))
        return int(getattr(result, "rowcount", 0) or 0)


class DigestRunRepository:
    """Digest runs of one workspace: at most one per channel and period."""

    def __init__(self, session: Session, team_id: str) -> None:
        self.session = session
        self.team_id = team_id

    def get(self, channel: str, period_start: str) -> DigestRun | None:
        query = select(DigestRun).where(
            DigestRun.team_id == self.team_id,
            DigestRun.channel == channel,
            DigestRun.period_start == period_start,
        )
        return self.session.scalars(query).one_or_none()

    def insert_if_absent(self, values: dict[str, Any]) -> bool:
        """Insert a run unless one exists for its channel and period; True when this call did."""
        row = {"claimed_at": utcnow(), "attempts": 0, **values, "team_id": self.team_id}
        table = DIGEST_RUNS_TABLE
        dialect = self.session.get_bind().dialect.name
        statement: Any
        if dialect == "postgresql":
            statement = postgresql.insert(table).values(row).on_conflict_do_nothing()
        else:
            statement = sqlite.insert(table).values(row).on_conflict_do_nothing()
        return self.session.execute(statement.returning(table.c.id)).scalar() is not None

    def take_over(self, run_id: int, state: str, claimed_at: datetime, now: datetime, trigger: str) -> bool:
        """Compare-and-set: claim a run still in `state` with the same `claimed_at` (nobody else took it)."""
        result = self.session.execute(
            update(DigestRun)
            .where(
                DigestRun.id == run_id,
                DigestRun.team_id == self.team_id,
                DigestRun.state == state,
                DigestRun.claimed_at == claimed_at,
            )
            .values(state="working", claimed_at=now, trigger=trigger, error=None)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    def finish(self, run_id: int, **values: Any) -> None:
        self.session.execute(
            update(DigestRun)
            .where(DigestRun.id == run_id, DigestRun.team_id == self.team_id)
            .values(finished_at=utcnow(), **values)
            .execution_options(synchronize_session=False)
        )

    def latest(self, limit: int = 10) -> list[DigestRun]:
        query = (
            select(DigestRun)
            .where(DigestRun.team_id == self.team_id)
            .order_by(DigestRun.period_start.desc(), DigestRun.id.desc())
            .limit(limit)
        )
        return list(self.session.scalars(query))


class DigestInputRepository:
    """What the weekly digest reads, as plain rows: active notes of a time window and their accounts."""

    def __init__(self, session: Session, team_id: str) -> None:
        self.session = session
        self.team_id = team_id

    def _window(self, since: datetime, until: datetime | None) -> Any:
        # Stored times are UTC (SQLite keeps the wall time only): compare in UTC.
        condition = and_(
            Note.team_id == self.team_id, Note.status == "active", Note.posted_at >= since.astimezone(UTC)
        )
        return condition if until is None else and_(condition, Note.posted_at < until.astimezone(UTC))

    def outcome_rows(
        self, since: datetime, until: datetime | None = None, *, evidence: bool = True
    ) -> list[tuple[Any, ...]]:
        """Active notes posted in [since, until): id, kind, account_id, tier, posted_at, amount (the
        value), currency, reasons (the JSON text), competitor, source, crm_id, renewal
        (details["renewal"] of notes without a kind), then with `evidence` account, permalink, text.

        JSON is read in SQL (amount, details) or left as text (reasons, a handful of distinct
        lists the caller parses once each), and posted_at is the stored value (text on SQLite, an
        aware datetime on PostgreSQL): decoding per row in Python costs as much as the scan.
        Without `evidence` a sixth less is read; `evidence_rows` fetches it for a few notes.
        """
        columns: list[Any] = [
            Note.id,
            Note.kind,
            Note.account_id,
            Note.tier,
            type_coerce(Note.posted_at, String).label("posted_at"),
            Note.amount["value"].as_float().label("amount"),
            Note.amount["currency"].as_string().label("currency"),
            cast(Note.reasons, Text).label("reasons"),
            Note.competitor,
            Note.source,
            Note.crm_id,
            case((Note.kind.is_(None), Note.details["renewal"].as_string())).label("renewal"),
        ]
        if evidence:
            columns += [Note.account, Note.permalink, Note.text]
        return self._plain_rows(select(*columns).where(self._window(since, until)))

    def evidence_rows(self, note_ids: Iterable[int]) -> list[tuple[Any, ...]]:
        """(id, account, permalink, text) of these notes of the workspace."""
        wanted = sorted({int(i) for i in note_ids})
        if not wanted:
            return []
        query = select(Note.id, Note.account, Note.permalink, Note.text).where(
            Note.team_id == self.team_id, Note.id.in_(wanted)
        )
        return self._plain_rows(query)

    def account_rows(
        self, ids: Iterable[int], fields: Sequence[str], *, extra: bool
    ) -> list[tuple[Any, ...]]:
        """id, `fields` (Account columns) and, with `extra`, the extra columns (JSON text on SQLite,
        a dict on PostgreSQL) of the accounts with these ids, looked up by primary key.

        The ids travel as one parameter, a JSON array that the database expands (an IN list of
        70,000 bound values costs more to compile than to run, a PostgreSQL array parameter more
        to adapt than this).
        """
        unknown = [f for f in fields if f not in ACCOUNT_FIELDS or f == "extra"]
        if unknown:
            raise ValueError(f"not account columns: {', '.join(unknown)}")
        wanted = sorted({int(i) for i in ids})
        if not wanted:
            return []
        columns = [getattr(Account, f) for f in fields] + ([Account.extra] if extra else [])
        listed = bindparam("ids", json.dumps(wanted), type_=String)
        if self.session.get_bind().dialect.name == "postgresql":
            # A set-returning function in FROM runs once. (Not `id = ANY(CAST(:text AS int[]))`:
            # PostgreSQL would parse that text again for every row it filters.)
            each = func.json_array_elements_text(cast(listed, postgresql.JSON)).table_valued("value")
            noted = select(cast(each.c.value, Integer))
        else:
            noted = select(func.json_each(listed).table_valued("value").c.value)
        query = select(Account.id, *columns).where(Account.team_id == self.team_id, Account.id.in_(noted))
        return self._plain_rows(query)

    def _plain_rows(self, query: Any) -> list[tuple[Any, ...]]:
        """The driver's rows as they come, without a SQLAlchemy Row each (a tenth of the load time
        at 100,000 rows): only for selects whose columns need no result processing."""
        result = self.session.connection().execute(query)
        try:
            return list(result.cursor.fetchall()) if result.cursor is not None else []
        finally:
            result.close()
