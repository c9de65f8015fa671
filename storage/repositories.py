"""Repositories: every query is scoped to one workspace. They take a Session and never commit."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Table, delete, func, insert, select, union, update
from sqlalchemy.orm import Session

from storage.models import Account, AccountAlias, Base, ImportRun, TaggingExample, Workspace, utcnow

ACCOUNTS_TABLE = Table("accounts", Base.metadata)  # the Core table behind the Account model

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


class AccountRepository:
    """Accounts of one workspace."""

    def __init__(self, session: Session, team_id: str) -> None:
        self.session = session
        self.team_id = team_id

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
        limit: int = 200,
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
