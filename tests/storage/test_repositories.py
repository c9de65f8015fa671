"""Repositories on SQLite and PostgreSQL: workspace scoping, bulk writes, uniqueness."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from insights.matching import account_keys
from storage.repositories import AccountRepository, NoteRepository, WorkspaceRepository


def _row(name: str, domain: str | None = None, **extra: object) -> dict[str, object]:
    return {
        "name": name,
        "domain": domain,
        "source": "canonical",
        "extra": {},
        **account_keys(name, domain),
        **extra,
    }


def test_every_query_is_scoped_to_its_workspace(session_factory: sessionmaker[Session]) -> None:
    with session_factory.begin() as session:
        WorkspaceRepository(session).get_or_create("T1")
        WorkspaceRepository(session).get_or_create("T2")
        AccountRepository(session, "T1").insert_many([_row("Acme Corp", "acmecorp.com"), _row("Contoso Ltd")])
        AccountRepository(session, "T2").insert_many([_row("Acme Corp", "acmecorp.com")])
    with session_factory() as session:
        t1, t2 = AccountRepository(session, "T1"), AccountRepository(session, "T2")
        assert (t1.count(), t2.count()) == (2, 1)
        t2_acme = t2.candidates(name_key="acme", compact_key="acmecorp", domain=None, first_word="acme")
        assert [a.team_id for a in t2_acme] == ["T2"]
        t1_ids = set(t1.name_keys())
        assert t1_ids.isdisjoint(t2.name_keys())
        assert all(t2.get(i) is None for i in t1_ids)  # another workspace's id reads as absent
        assert t2.by_ids(list(t1_ids)) == []
        assert sorted(WorkspaceRepository(session).team_ids()) == ["T1", "T2"]


def test_insert_returns_ids_in_order_and_update_changes_in_place(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory.begin() as session:
        WorkspaceRepository(session).get_or_create("T1")
        repo = AccountRepository(session, "T1")
        ids = repo.insert_many([_row(f"Company {i}") for i in range(50)], return_ids=True)
        assert len(ids) == 50
        assert [repo.get(i).name for i in ids[:3]] == ["Company 0", "Company 1", "Company 2"]  # type: ignore[union-attr]
        repo.update_many([{"id": ids[0], "employees": 1200, "extra": {"tier_hint": "x"}}])
    with session_factory() as session:
        account = AccountRepository(session, "T1").get(ids[0])
        assert account is not None
        assert (account.employees, account.extra) == (1200, {"tier_hint": "x"})


def test_crm_ids_are_unique_per_workspace(session_factory: sessionmaker[Session]) -> None:
    with session_factory.begin() as session:
        WorkspaceRepository(session).get_or_create("T1")
        WorkspaceRepository(session).get_or_create("T2")
        AccountRepository(session, "T1").insert_many([_row("A", salesforce_id="001A")])
        AccountRepository(session, "T2").insert_many([_row("A", salesforce_id="001A")])  # fine elsewhere
    with pytest.raises(IntegrityError), session_factory.begin() as session:
        AccountRepository(session, "T1").insert_many([_row("B", salesforce_id="001A")])


def test_aliases_are_added_once(session_factory: sessionmaker[Session]) -> None:
    with session_factory.begin() as session:
        WorkspaceRepository(session).get_or_create("T1")
        repo = AccountRepository(session, "T1")
        (account_id,) = repo.insert_many([_row("Woodgrove Credit Union")], return_ids=True)
        assert repo.add_aliases([(account_id, "Woodgrove CU", "woodgrove cu")], source="import") == 1
        assert repo.add_aliases([(account_id, "Woodgrove CU", "woodgrove cu")], source="import") == 0
        found = repo.candidates(
            name_key="woodgrove cu", compact_key="woodgrovecu", domain=None, first_word="woodgrove"
        )
        assert [a.id for a in found] == [account_id]
        assert repo.aliases_of([account_id]) == {account_id: ["Woodgrove CU"]}


def test_deleting_a_workspace_account_removes_its_aliases(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory.begin() as session:
        WorkspaceRepository(session).get_or_create("T1")
        repo = AccountRepository(session, "T1")
        (account_id,) = repo.insert_many([_row("Woodgrove Credit Union")], return_ids=True)
        repo.add_aliases([(account_id, "WCU", "wcu")], source="import")
    with session_factory.begin() as session:
        assert AccountRepository(session, "T1").delete_all() == 1
    with session_factory() as session:
        assert AccountRepository(session, "T1").aliases_of([account_id]) == {}


def test_bulk_note_rows_are_stored_as_single_notes_are_and_never_twice(
    session_factory: sessionmaker[Session],
) -> None:
    when = datetime(2026, 6, 26, 12, tzinfo=UTC)
    amount = {"value": 38000.0, "currency": "USD", "unit": None}
    note = {
        "channel": "crm", "text": "Closed Lost: Proseware — Price\ttab\\n\nnext\r line \\. é", "kind": "loss",
        "account": "Proseware Inc", "account_id": None, "competitor": None, "reasons": ["price"],
        "amount": amount, "posted_at": when, "details": {"stage": "Closed Lost", "description": None},
        "crm_id": "006A", "status": "active", "retracted_reason": None, "user_id": None, "tier": None,
        "confidence": 1.0, "source": "import", "created_at": when, "updated_at": when,
    }  # fmt: skip
    columns = [*note, "ts"]
    with session_factory.begin() as session:
        WorkspaceRepository(session).get_or_create("T1")
        repo = NoteRepository(session, "T1")
        repo.insert_if_absent({**note, "ts": "sf:single"})
        repo.insert_if_absent({**note, "ts": "sf:no-amount", "amount": None, "reasons": []})
        rows = [(*note.values(), f"sf:bulk{i}") for i in range(3)]
        rows.append((*{**note, "amount": None, "reasons": []}.values(), "sf:bulk-no-amount"))
        repo.insert_rows(columns, [*rows, (*note.values(), "sf:single")])  # sf:single is there already
    with session_factory() as session:
        stored = {
            row[0]: row[1:]
            for row in session.connection().exec_driver_sql(
                "SELECT ts, " + ", ".join(c for c in columns if c != "ts") + " FROM notes"
            )
        }
        repo = NoteRepository(session, "T1")
        ids = repo.ids_in("crm")
        views = {r["ts"]: r for r in repo.rows_by_id(list(ids.values()), ["text", "amount", "reasons"])}
        assert NoteRepository(session, "T2").rows_by_id(list(ids.values()), ["text"]) == []
        null = dict(session.connection().exec_driver_sql("SELECT ts, amount IS NULL FROM notes").all())
    assert null["sf:bulk-no-amount"] == null["sf:no-amount"] and not null["sf:bulk0"]
    assert len(stored) == 6
    assert stored["sf:bulk0"] == stored["sf:bulk2"] == stored["sf:single"]
    assert stored["sf:bulk-no-amount"] == stored["sf:no-amount"]
    assert (views["sf:bulk1"]["amount"], views["sf:bulk1"]["reasons"]) == (amount, ["price"])
    assert views["sf:bulk1"]["text"] == note["text"] and views["sf:bulk-no-amount"]["amount"] is None
