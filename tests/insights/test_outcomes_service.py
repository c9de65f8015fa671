"""Outcomes import as a use case and a command, on SQLite and PostgreSQL: CRM deals become notes,
idempotently, without touching Slack-captured or person-corrected notes."""

from __future__ import annotations

import gc
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from bot.cli import main
from insights import outcomes_service
from insights.accounts_csv import AccountsFileError
from insights.capture import (
    IncomingMessage,
    NoteCorrection,
    NoteView,
    capture_message,
    correct_note,
    iter_notes,
)
from insights.config import Config
from insights.errors import AccountNotFoundError, NoAccountsError
from insights.normalize import name_key
from insights.outcomes_service import OutcomesImportSummary, _Lookup, import_outcomes
from insights.service import fit_for, import_accounts, resolve_account
from insights.tagging import Tagger
from storage.models import ImportRun, Note
from storage.repositories import AccountRepository, ImportRunRepository
from tests.conftest import DATA, ROOT

ACCOUNTS = ROOT / "bot" / "resources" / "sample_accounts.csv"
SF = DATA / "salesforce_opportunities.csv"
HUBSPOT = DATA / "hubspot_deals.csv"
TEAM = "T1"
SF_HEADER = "Id,Name,Account.Name,StageName,CloseDate,Amount,Type,Loss_Reason__c,Description"


def _import(
    factory: sessionmaker[Session], config: Config, tagger: Tagger | None, path: Path, **kw: Any
) -> OutcomesImportSummary:
    return import_outcomes(
        factory,
        TEAM,
        path.read_bytes(),
        path.name,
        icp=config.icp,
        taxonomy=config.taxonomy,
        tagger=tagger,
        **kw,
    )


def _notes(factory: sessionmaker[Session]) -> dict[str, NoteView]:
    return {n.ts: n for n in iter_notes(factory, TEAM)}


def _snapshot(factory: sessionmaker[Session]) -> list[dict[str, Any]]:
    return [asdict(n) for n in sorted(iter_notes(factory, TEAM), key=lambda n: n.id)]


def _by_deal(notes: dict[str, NoteView], deal_name: str) -> NoteView:
    (note,) = [n for n in notes.values() if n.details.get("deal_name") == deal_name]
    return note


def _tier(factory: sessionmaker[Session], config: Config, account: str) -> str:
    return fit_for(factory, TEAM, account, config.icp).fit.tier


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- both layouts ------------------------------------------------------------------------------


def test_a_salesforce_export_becomes_notes_of_the_contract_kinds(
    session_factory: sessionmaker[Session], tagger: Tagger, config: Config
) -> None:
    summary = _import(session_factory, config, tagger, SF)
    assert (summary.layout, summary.rows, summary.closed, summary.created) == ("salesforce", 40, 34, 34)
    assert summary.by_kind == {"win": 12, "loss": 12, "renewal_loss": 3, "customer_win": 3}
    assert (summary.renewals_kept, summary.skipped_open, summary.skipped_not_outcome) == (4, 5, 1)
    assert summary.accounts_not_found == 3
    assert summary.unknown_accounts == ("Contoso Pharmaceuticals", "Globex Corporation", "Initech")
    notes = _notes(session_factory)
    assert len(notes) == 34

    lost = notes["sf:0065e00000D03QqAAA"]  # Proseware: "Lost to Competitor", Gong in the description
    assert (lost.kind, lost.account, lost.competitor, lost.reasons) == ("loss", "Proseware Inc", "Gong", ())
    assert lost.text == (
        "Closed Lost: Proseware - Forecasting — Loss reason: Lost to Competitor — Went with Gong after "
        "a three-week bake-off; they bundled call recording."
    )
    assert (lost.channel, lost.crm_id, lost.source, lost.user, lost.status) == (
        "crm",
        "0065e00000D03QqAAA",
        "import",
        None,
        "active",
    )
    assert lost.confidence == 1.0 and lost.permalink is None
    assert lost.posted_at == datetime(2026, 6, 26, 12, tzinfo=UTC)
    assert lost.amount == {"value": 38000.0, "currency": "USD", "unit": None}
    assert lost.details["stage"] == "Closed Lost" and lost.details["layout"] == "salesforce"
    assert lost.tier == _tier(session_factory, config, "Proseware Inc")
    assert lost.account_id is not None

    assert _by_deal(notes, "Northwind Traders - Analytics").reasons == ("price",)
    assert _by_deal(notes, "Humongous Insurance - Pilot").reasons == ("no_decision",)
    litware = _by_deal(notes, "Litware - Renewal FY27")
    assert (litware.kind, litware.reasons) == ("renewal_loss", ("adoption",))
    city = _by_deal(notes, "City Power & Light - Renewal")
    assert (city.kind, city.competitor) == ("renewal_loss", "Gainsight")
    expansion_lost = _by_deal(notes, "Kittredge Medical - Quality")  # Existing Business, Closed Lost
    assert (expansion_lost.kind, expansion_lost.reasons) == ("renewal_loss", ("price",))

    kept = _by_deal(notes, "Kestrel Workflow - Renewal FY27")
    assert (kept.kind, kept.details["renewal"], kept.account) == (None, "kept", "Kestrel Workflow Inc")
    upsell = _by_deal(notes, "Acme Corp - Add-on: Forecasting")  # written "ACME Corp." in the file
    assert (upsell.kind, upsell.account) == ("customer_win", "Acme Corp")
    assert upsell.tier == _tier(session_factory, config, "Acme Corp")

    unknown = _by_deal(notes, "Contoso Pharma - Commercial")  # not "Contoso Ltd": no false match
    assert (unknown.account, unknown.account_id, unknown.tier, unknown.competitor) == (
        "Contoso Pharmaceuticals",
        None,
        None,
        "Clari",
    )
    assert not [n for n in notes.values() if "(dup)" in n.text]  # closed lost as "Duplicate"


def test_a_hubspot_export_reads_free_text_loss_reasons_with_the_slack_tagger(
    session_factory: sessionmaker[Session], tagger: Tagger, config: Config
) -> None:
    summary = _import(session_factory, config, tagger, HUBSPOT)
    assert (summary.layout, summary.closed, summary.created, summary.skipped_open) == ("hubspot", 35, 35, 5)
    assert summary.by_kind == {"win": 10, "loss": 12, "renewal_loss": 5, "customer_win": 3}
    assert summary.renewals_kept == 5
    assert summary.unknown_accounts == ("Umbrella Health Partners",)
    notes = _notes(session_factory)
    renewal = notes["hs:20488731001"]
    assert (renewal.kind, renewal.details["renewal"], renewal.reasons) == (None, "kept", ())
    assert renewal.details["won_reason"] == "Renewed early for a multi-year discount"
    assert renewal.details["pipeline"] == "Renewals"
    halcyon = _by_deal(notes, "Halcyon Security – Enterprise")  # "Lost to Gong, they bundled ..."
    assert (halcyon.kind, halcyon.competitor) == ("loss", "Gong")
    assert _by_deal(notes, "Quarrystone Labs – Team").reasons == ("no_decision",)  # "Went dark ..."
    assert _by_deal(notes, "Northgate Payroll – Pro").reasons == ("budget",)
    assert _by_deal(notes, "Clearfork Clinical – Platform").reasons == ("security_compliance",)
    wingtip = _by_deal(notes, "Wingtip Toys – Renewal")
    assert (wingtip.kind, wingtip.competitor, wingtip.reasons) == ("renewal_loss", "ChurnZero", ("price",))
    assert _by_deal(notes, "Kestrel Workflow – Seats").kind == "customer_win"
    won = _by_deal(notes, "A. Datum – Forecasting")  # "Replaced Salesloft forecasting": a rival, no reason
    assert (won.kind, won.competitor, won.reasons) == ("win", "Salesloft", ())
    assert won.posted_at == datetime(2026, 9, 15, 12, tzinfo=UTC)


# --- importing again ---------------------------------------------------------------------------


def test_importing_the_same_file_twice_changes_nothing(
    session_factory: sessionmaker[Session], tagger: Tagger, config: Config
) -> None:
    _import(session_factory, config, tagger, SF)
    _import(session_factory, config, tagger, HUBSPOT)
    before = _snapshot(session_factory)
    again = _import(session_factory, config, tagger, SF)
    assert (again.created, again.updated, again.unchanged, again.retracted) == (0, 0, 34, 0)
    assert _snapshot(session_factory) == before
    with session_factory() as session:
        runs = session.scalars(
            select(ImportRun)
            .where(ImportRun.team_id == TEAM, ImportRun.kind == "outcomes")
            .order_by(ImportRun.id)
        ).all()
    assert [(r.kind, r.layout, r.rows, r.created, r.unchanged) for r in runs] == [
        ("outcomes", "salesforce", 40, 34, 0),
        ("outcomes", "hubspot", 40, 35, 0),
        ("outcomes", "salesforce", 40, 0, 34),
    ]


def test_a_row_the_crm_changed_updates_its_note_in_place(
    session_factory: sessionmaker[Session], tagger: Tagger, config: Config, tmp_path: Path
) -> None:
    _import(session_factory, config, tagger, SF)
    before = _notes(session_factory)
    text = SF.read_text(encoding="utf-8")
    # Northwind: the loss reason and amount changed; Adventure Works: won turned into lost.
    text = text.replace(
        '"2026-06-19","54000","New Business","Price"', '"2026-06-19","50000","New Business","Budget"'
    )
    text = text.replace(
        '"Closed Won","2026-07-22","72000","New Business","",""',
        '"Closed Lost","2026-07-24","72000","New Business","Lost to Competitor","Chose Clari"',
    )
    summary = _import(session_factory, config, tagger, _write(tmp_path, "changed.csv", text))
    assert (summary.created, summary.updated, summary.unchanged) == (0, 2, 32)
    after = _notes(session_factory)
    assert after.keys() == before.keys()
    northwind = _by_deal(after, "Northwind Traders - Analytics")
    assert northwind.id == _by_deal(before, "Northwind Traders - Analytics").id
    assert (northwind.reasons, northwind.amount) == (
        ("budget",),
        {"value": 50000.0, "currency": "USD", "unit": None},
    )
    assert northwind.details["loss_reason"] == "Budget"
    adventure = _by_deal(after, "Adventure Works - Plant analytics")
    assert (adventure.kind, adventure.competitor, adventure.posted_at.day) == ("loss", "Clari", 24)
    assert adventure.tier == _by_deal(before, "Adventure Works - Plant analytics").tier


def test_a_note_a_person_corrected_is_left_as_they_made_it(
    session_factory: sessionmaker[Session], tagger: Tagger, config: Config, tmp_path: Path
) -> None:
    _import(session_factory, config, tagger, SF)
    target = _by_deal(_notes(session_factory), "Northwind Traders - Analytics")
    fix = NoteCorrection(
        kind="loss", account="Northwind Traders", competitor="Clari", reasons=("product_gap",)
    )
    corrected = correct_note(session_factory, TEAM, target.id, "U0LEAD", fix, icp=config.icp).note
    assert corrected is not None
    text = SF.read_text(encoding="utf-8").replace(
        '"2026-06-19","54000","New Business","Price"', '"2026-06-19","50000","New Business","Budget"'
    )
    summary = _import(session_factory, config, tagger, _write(tmp_path, "changed.csv", text))
    assert (summary.updated, summary.kept_corrected, summary.unchanged) == (0, 1, 33)
    stored = _notes(session_factory)[target.ts]
    assert stored == corrected


def test_an_import_never_touches_slack_captured_notes(
    session_factory: sessionmaker[Session], tagger: Tagger, config: Config
) -> None:
    message = IncomingMessage(
        channel="C0DEALS",
        ts="1782400000.000100",
        text="Lost Proseware to Gong, they bundled call recording",
        user="U0MAYA",
    )
    captured = capture_message(session_factory, TEAM, message, tagger, config.icp).note
    assert captured is not None and captured.kind == "loss"
    _import(session_factory, config, tagger, SF)
    _import(session_factory, config, tagger, SF)
    notes = _notes(session_factory)
    assert notes[message.ts] == captured  # untouched; the digest counts the two once
    assert len(notes) == 35 and sum(n.source == "import" for n in notes.values()) == 34


def test_a_reopened_deal_retracts_its_note_and_closing_it_again_restores_it(
    session_factory: sessionmaker[Session], tagger: Tagger, config: Config, tmp_path: Path
) -> None:
    closed = _write(
        tmp_path, "closed.csv", f"{SF_HEADER}\n006A,Acme - Core,Acme Corp,Closed Won,2026-10-05,100,,,\n"
    )
    reopened = _write(
        tmp_path, "open.csv", f"{SF_HEADER}\n006A,Acme - Core,Acme Corp,Negotiation/Review,,100,,,\n"
    )
    assert _import(session_factory, config, tagger, closed).created == 1
    summary = _import(session_factory, config, tagger, reopened)
    assert (summary.retracted, summary.skipped_open) == (1, 1)
    note = _notes(session_factory)["sf:006A"]
    assert (note.status, note.retracted_reason) == ("retracted", "reopened")
    assert _import(session_factory, config, tagger, reopened).retracted == 0
    assert _import(session_factory, config, tagger, closed).updated == 1
    assert _notes(session_factory)["sf:006A"].status == "active"


def test_unknown_accounts_are_kept_as_written_and_linked_once_the_account_is_imported(
    session_factory: sessionmaker[Session], config: Config, tmp_path: Path
) -> None:
    deals = _write(
        tmp_path, "deals.csv", f"{SF_HEADER}\n006A,Core,Zephyr Robotics,Closed Lost,2026-10-05,100,,Price,\n"
    )
    first = _import(session_factory, config, None, deals)  # no accounts at all yet; builds its tagger
    assert (first.accounts_not_found, first.unknown_accounts) == (1, ("Zephyr Robotics",))
    note = _notes(session_factory)["sf:006A"]
    assert (note.account, note.account_id, note.tier, note.reasons) == (
        "Zephyr Robotics",
        None,
        None,
        ("price",),
    )
    accounts = _write(
        tmp_path,
        "accounts.csv",
        "name,industry,employees,country,annual_revenue\n"
        "Zephyr Robotics Inc,Software,900,United States,90000000\n",
    )
    import_accounts(session_factory, TEAM, accounts.read_bytes(), accounts.name)
    again = _import(session_factory, config, None, deals)
    assert (again.updated, again.accounts_matched, again.accounts_not_found) == (1, 1, 0)
    linked = _notes(session_factory)["sf:006A"]
    assert (linked.account, linked.tier) == ("Zephyr Robotics Inc", "A")
    assert linked.tier == _tier(session_factory, config, "Zephyr Robotics")


def _resolve_one_by_one(repo: AccountRepository, name: str, keys: dict[int, str]) -> int | None:
    try:
        return resolve_account(repo, name, keys)[0].id
    except (AccountNotFoundError, NoAccountsError):
        return None


def test_many_account_names_resolve_at_once_exactly_as_one_by_one(
    session_factory: sessionmaker[Session], tagger: Tagger
) -> None:
    # 250 accounts share a first word: a short form is ambiguous, and past the 200 candidates a
    # lookup keeps, "Nordic Lumber 240" is found no more by its exact name (as one by one).
    crowd = "name,domain\n" + "".join(f"Nordic Lumber {i},nordiclumber{i}.fi\n" for i in range(250))
    import_accounts(session_factory, TEAM, crowd.encode(), "crowd.csv")
    with session_factory.begin() as session:
        repo = AccountRepository(session, TEAM)
        rows = repo.lookup_rows()
        by_name = {row[1]: row[0] for row in rows}
        repo.add_aliases(
            [(by_name["Acme Corp"], "Roadrunner Supply", name_key("Roadrunner Supply")),
             (by_name["Fabrikam Systems"], "Acme", name_key("Acme"))],
            "import",
        )  # fmt: skip
    names = ["Roadrunner Supply", "Acme", "Nordic", "Nordic Lumber", "Nordic Lumber 7", "Nordic Lumber 240",
             "nordiclumber3.fi", "Contoso Pharmaceuticals", "Initech", "", "   ", "Zz",
             "Fabrikam Sytsems"]  # fmt: skip
    for _, name, domain, *_ in rows[:120]:
        words = name.split()
        names += [name, name.upper(), f" {name.lower()}. ", words[0], name.replace(" ", ""), name[:-1]]
        names += [f"{name} Holdings", name[1:] + name[0]] + ([domain, f"www.{domain}"] if domain else [])
    with session_factory() as session:
        repo = AccountRepository(session, TEAM)
        lookup = _Lookup(repo.lookup_rows(), repo.alias_rows())
        keys = repo.name_keys()
        one_by_one = {name: _resolve_one_by_one(repo, name, keys) for name in names}
    at_once = {name: lookup.resolve(name) for name in names}
    assert at_once == one_by_one
    assert one_by_one["Nordic Lumber 7"] == by_name["Nordic Lumber 7"] and one_by_one["Nordic"] is None
    assert one_by_one["Nordic Lumber 240"] is None
    assert (
        sum(v is None for v in at_once.values()) > 20 and sum(v is not None for v in at_once.values()) > 500
    )


def test_an_import_writes_the_same_notes_whether_names_resolve_at_once_or_one_by_one(
    session_factory: sessionmaker[Session],
    tagger: Tagger,
    config: Config,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    at_once = _import(session_factory, config, tagger, SF)
    notes = _snapshot(session_factory)
    with session_factory.begin() as session:
        session.execute(delete(Note).where(Note.team_id == TEAM))
    monkeypatch.setattr(outcomes_service, "_BULK_SHARE", 0)  # never at once
    one_by_one = _import(session_factory, config, tagger, SF)
    ignored = {"id", "created_at"}
    assert [{k: v for k, v in n.items() if k not in ignored} for n in _snapshot(session_factory)] == [
        {k: v for k, v in n.items() if k not in ignored} for n in notes
    ]
    assert at_once == one_by_one


# --- bad files and failures --------------------------------------------------------------------


_BAD_FILES = [
    (
        "no_account.csv",
        b"Id,Name,StageName,CloseDate\n006A,Deal,Closed Won,2026-10-05\n",
        "no_account.csv: line 1, column 'Account.Name': is missing",
    ),
    (
        "bad_date.csv",
        "\n".join(
            [
                SF_HEADER,
                *(f"006{i},D,Acme Corp,Closed Won,2026-10-05,1,,," for i in range(40)),
                "006X,D,Acme Corp,Closed Won,31/31/2026,1,,,\n",
            ]
        ).encode(),
        "bad_date.csv: row 41 (line 42), column 'CloseDate': '31/31/2026' is not a date on the calendar",
    ),
    (
        "latin1.csv",
        (SF_HEADER + "\n006A,Deal,Caf\xe9 Nord,Closed Won,2026-10-05,1,,,\n").encode("cp1252"),
        "latin1.csv: line 2: byte 0xe9 is not valid UTF-8",
    ),
]


@pytest.mark.parametrize("bad", _BAD_FILES, ids=[name for name, _, _ in _BAD_FILES])
def test_a_bad_file_is_refused_with_where_and_writes_nothing(
    session_factory: sessionmaker[Session],
    tagger: Tagger,
    config: Config,
    bad: tuple[str, bytes, str],
) -> None:
    name, data, message = bad
    _import(session_factory, config, tagger, SF)
    before = _snapshot(session_factory)
    with pytest.raises(AccountsFileError) as caught:
        import_outcomes(
            session_factory, TEAM, data, name, icp=config.icp, taxonomy=config.taxonomy, tagger=tagger
        )
    assert str(caught.value).startswith(message)
    assert _snapshot(session_factory) == before


def test_a_failure_while_writing_rolls_everything_back(
    session_factory: sessionmaker[Session], tagger: Tagger, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_record(self: ImportRunRepository, **values: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(ImportRunRepository, "record", failing_record)
    with pytest.raises(RuntimeError, match="disk full"):
        _import(session_factory, config, tagger, SF)
    assert _snapshot(session_factory) == []
    assert gc.isenabled()  # the collector, paused while the import ran, is back


def test_the_garbage_collector_is_paused_only_while_an_import_runs(
    session_factory: sessionmaker[Session], tagger: Tagger, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []
    real_of = outcomes_service._Labels.of

    def watching(self: Any, record: Any) -> Any:
        seen.append(gc.isenabled())
        return real_of(self, record)

    monkeypatch.setattr(outcomes_service._Labels, "of", watching)
    assert _import(session_factory, config, tagger, SF).created > 0
    assert seen and not any(seen)
    assert gc.isenabled()
    gc.disable()  # a caller that had it off keeps it off
    try:
        _import(session_factory, config, tagger, SF)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_progress_is_reported_while_reading_and_writing_a_large_file(
    session_factory: sessionmaker[Session], tagger: Tagger, config: Config, tmp_path: Path
) -> None:
    rows = [
        f"006{i:07d},Deal {i},Acme Corp,Closed Won,2026-{1 + i % 12:02d}-15,1000,,," for i in range(12_000)
    ]
    big = _write(tmp_path, "big.csv", SF_HEADER + "\n" + "\n".join(rows) + "\n")
    calls: list[tuple[str, int, int]] = []
    summary = _import(session_factory, config, tagger, big, progress=lambda *a: calls.append(a))
    assert summary.created == 12_000
    assert ("read", 10_001, 12_002) in calls and calls.count(("read", 12_002, 12_002)) == 1
    assert [c for c in calls if c[0] == "write"] == [
        ("write", 5000, 12_000),
        ("write", 10_000, 12_000),
        ("write", 12_000, 12_000),
    ]


# --- the command -------------------------------------------------------------------------------


def test_outcomes_import_command_prints_the_summary_and_refuses_a_bad_file_in_one_line(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["accounts", "import", str(ACCOUNTS)]) == 0
    capsys.readouterr()
    assert main(["outcomes", "import", str(SF)]) == 0
    out, _ = capsys.readouterr()
    assert out.startswith(f"Imported 40 rows from {SF} (Salesforce Opportunity export) in ")
    assert "34 new, 0 updated, 0 unchanged." in out
    assert "Outcomes: 12 wins, 12 losses, 3 renewal losses, 3 customer wins; 4 renewals kept" in out
    assert (
        "Skipped 5 open deals (2 Negotiation/Review, 1 Proposal/Price Quote, 1 Qualification, 1 Prospecting)"
        in out
    )
    assert "3 names not found, kept as written: Contoso Pharmaceuticals, Globex Corporation, Initech." in out
    assert main(["outcomes", "import", str(SF)]) == 0
    assert "0 new, 0 updated, 34 unchanged." in capsys.readouterr()[0]

    bad = workdir / "latin1.csv"
    bad.write_bytes((SF_HEADER + "\n006A,Deal,Caf\xe9 Nord,Closed Won,2026-10-05,1,,,\n").encode("cp1252"))
    assert main(["outcomes", "import", str(bad)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith(f"icp-bot: {bad}: line 2: byte 0xe9")
    assert main(["outcomes", "import", str(bad), "--encoding", "cp1252"]) == 0
    assert "kept as written: Café Nord." in capsys.readouterr()[0]
    assert main(["outcomes", "import", str(workdir / "missing.csv")]) == 1
    assert capsys.readouterr()[1] == f"icp-bot: {workdir / 'missing.csv'}: no such file\n"
