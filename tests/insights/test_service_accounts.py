"""Account import and the fit check as use cases, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from insights.accounts_csv import AccountsFileError
from insights.config import load_config, parse_config
from insights.errors import AccountNotFoundError, NoAccountsError, QueryError
from insights.service import fit_for, import_accounts, iter_accounts, parse_adhoc, score_all
from storage.repositories import AccountRepository
from tests.conftest import DATA

SF = DATA / "salesforce_accounts.csv"
HUBSPOT = DATA / "hubspot_companies.csv"
CANONICAL = (
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
)


def _import(factory: sessionmaker[Session], path: Path, team: str = "T1") -> Any:
    return import_accounts(factory, team, path.read_bytes(), path.name)


def _canonical(factory: sessionmaker[Session], team: str) -> list[dict[str, Any]]:
    return sorted(
        ({k: row[k] for k in CANONICAL} for row in iter_accounts(factory, team)),
        key=lambda r: r["name"],
    )


def _snapshot(factory: sessionmaker[Session], team: str) -> list[dict[str, Any]]:
    return sorted((dict(row) for row in iter_accounts(factory, team)), key=lambda r: r["id"])


def test_salesforce_and_hubspot_exports_give_the_same_canonical_accounts(
    session_factory: sessionmaker[Session],
) -> None:
    sf = _import(session_factory, SF, "T_SF")
    hs = _import(session_factory, HUBSPOT, "T_HS")
    assert (sf.layout, hs.layout) == ("salesforce", "hubspot")
    assert sf.created == hs.created == 12
    sf_accounts, hs_accounts = (
        _canonical(session_factory, "T_SF"),
        _canonical(session_factory, "T_HS"),
    )
    assert sf_accounts == hs_accounts
    acme = next(a for a in sf_accounts if a["name"] == "Acme Corp")
    assert acme == {
        "name": "Acme Corp",
        "domain": "acmecorp.com",
        "industry": "Software",
        "employees": 850,
        "annual_revenue": 120_000_000.0,
        "country": "United States",
        "state": "California",
        "type": "Customer",
        "owner": "Maria Lindqvist",
        "arr": None,
    }
    # Extra columns are kept under snake_case names, Salesforce's __c suffix dropped.
    extras = {row["name"]: row["extra"] for row in iter_accounts(session_factory, "T_SF")}
    assert extras["Acme Corp"] == {"tech_stack": "Salesforce; Slack; AWS", "segment": "Mid-Market"}


def test_importing_the_same_file_twice_changes_nothing(
    session_factory: sessionmaker[Session],
) -> None:
    _import(session_factory, SF)
    before = _snapshot(session_factory, "T1")
    again = _import(session_factory, SF)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 12)
    assert _snapshot(session_factory, "T1") == before  # updated_at included: nothing was touched


def test_a_second_crm_updates_the_same_accounts_in_place(
    session_factory: sessionmaker[Session],
) -> None:
    _import(session_factory, SF)
    ids_before = {row["name"]: row["id"] for row in iter_accounts(session_factory, "T1")}
    result = _import(session_factory, HUBSPOT)
    assert result.created == 0  # matched by domain, or by name where there is no domain
    rows = {row["name"]: row for row in iter_accounts(session_factory, "T1")}
    assert {n: r["id"] for n, r in rows.items()} == ids_before
    acme = rows["Acme Corp"]
    assert (acme["salesforce_id"], acme["hubspot_id"]) == ("0015e00000AcmeAAA", "9001")
    # Both files' extra columns are merged.
    assert acme["extra"]["segment"] == "Mid-Market" and acme["extra"]["create_date"] == "2023-01-10 09:12"


def test_reimport_updates_changed_fields_matched_by_crm_id_even_after_a_rename(
    session_factory: sessionmaker[Session], tmp_path: Path, example_config_path: Path
) -> None:
    _import(session_factory, SF)
    text = SF.read_text(encoding="utf-8").replace(
        '"Acme Corp","https://www.acmecorp.com"', '"Acme Corporation","acme.io"'
    )
    text = text.replace(
        '"Fabrikam Systems","http://fabrikam.com/","Software","6400"',
        '"Fabrikam Systems","http://fabrikam.com/","Software","7000"',
    )
    changed = tmp_path / "sf2.csv"
    changed.write_text(text, encoding="utf-8")
    result = _import(session_factory, changed)
    assert (result.created, result.updated, result.unchanged) == (0, 2, 10)
    rows = {row["salesforce_id"]: row for row in iter_accounts(session_factory, "T1")}
    assert (rows["0015e00000AcmeAAA"]["name"], rows["0015e00000AcmeAAA"]["domain"]) == (
        "Acme Corporation",
        "acme.io",
    )
    assert rows["0015e00000FabrAAA"]["employees"] == 7000
    # The lookup keys moved with the rename.
    answer = fit_for(session_factory, "T1", "acme.io", load_config(example_config_path).icp)
    assert answer.account == "Acme Corporation"


def test_a_bad_file_leaves_the_database_as_it_was(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    _import(session_factory, SF)
    before = _snapshot(session_factory, "T1")
    rows = ["name,domain,employees"] + [f"Company {i},c{i}.com,{i}" for i in range(1, 6000)]
    rows[5012] = "Company 5012,c5012.com,lots"
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(AccountsFileError) as caught:
        _import(session_factory, bad)
    assert "row 5012 (line 5013), column 'employees': 'lots' is not a number" in str(caught.value)
    assert _snapshot(session_factory, "T1") == before


def test_a_failure_while_writing_rolls_everything_back(
    session_factory: sessionmaker[Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _import(session_factory, SF)
    before = _snapshot(session_factory, "T1")
    rows = ["name,domain,employees"] + [f"New {i},new{i}.com,{i}" for i in range(12_000)]
    big = tmp_path / "big.csv"
    big.write_text("\n".join(rows) + "\n", encoding="utf-8")
    calls = {"n": 0}
    original = AccountRepository.insert_many

    def failing_insert(self: AccountRepository, batch: list[dict[str, Any]]) -> list[int]:
        calls["n"] += 1
        if calls["n"] == 2:  # the first batch is already written when this fails
            raise RuntimeError("disk full")
        return original(self, batch)

    monkeypatch.setattr(AccountRepository, "insert_many", failing_insert)
    with pytest.raises(RuntimeError, match="disk full"):
        _import(session_factory, big)
    assert calls["n"] == 2
    assert _snapshot(session_factory, "T1") == before


def test_duplicate_rows_in_one_file_become_one_account(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    path = tmp_path / "dups.csv"
    path.write_text(
        "name,domain,employees\nAcme Corp,acmecorp.com,800\nACME Corp.,acmecorp.com,850\n",
        encoding="utf-8",
    )
    result = _import(session_factory, path)
    assert (result.created, result.merged_in_file) == (1, 1)
    (row,) = list(iter_accounts(session_factory, "T1"))
    assert row["employees"] == 850


@pytest.fixture
def loaded(session_factory: sessionmaker[Session]) -> sessionmaker[Session]:
    _import(session_factory, SF)
    return session_factory


@pytest.mark.parametrize(
    ("query", "matched_from"),
    [
        ("AcmeCorp", "name"),
        ("acme corp", "name"),
        ("ACME", "name"),
        ("acmecorp.com", "domain"),
        ("https://www.acmecorp.com/pricing", "domain"),
        ("Acme Corp, Inc.", "name"),
    ],
)
def test_every_way_of_naming_acme_finds_the_same_account(
    loaded: sessionmaker[Session], example_config_path: Path, query: str, matched_from: str
) -> None:
    icp = load_config(example_config_path).icp
    answer = fit_for(loaded, "T1", query, icp)
    assert (answer.account, answer.matched_from) == ("Acme Corp", matched_from)
    assert (answer.fit.score, answer.fit.tier, answer.icp_version) == (100, "A", "2026-Q4")


def test_short_forms_typos_and_unknown_names(
    loaded: sessionmaker[Session], example_config_path: Path
) -> None:
    icp = load_config(example_config_path).icp
    assert fit_for(loaded, "T1", "Woodgrove", icp).account == "Woodgrove Credit Union"
    typo = fit_for(loaded, "T1", "Northwnd Traders", icp)
    assert (typo.account, typo.matched_from) == ("Northwind Traders", "fuzzy")
    with pytest.raises(AccountNotFoundError) as unknown:
        fit_for(loaded, "T1", "Initech", icp)
    assert unknown.value.code == "unknown_account"
    with pytest.raises(AccountNotFoundError) as close:
        fit_for(loaded, "T1", "Contsoo", icp)
    assert [s.name for s in close.value.suggestions][:1] == ["Contoso Ltd"]


def test_a_workspace_never_sees_another_workspaces_accounts(
    loaded: sessionmaker[Session], example_config_path: Path
) -> None:
    icp = load_config(example_config_path).icp
    _import(loaded, HUBSPOT, "T2")
    assert fit_for(loaded, "T2", "Acme", icp).account_id != fit_for(loaded, "T1", "Acme", icp).account_id
    with pytest.raises(NoAccountsError):
        fit_for(loaded, "T_EMPTY", "Acme", icp)


@pytest.mark.parametrize(
    "query",
    [
        "",
        "   ",
        "\x00\x07\x1b",
        "x" * 10_000,
        "'; DROP TABLE accounts; --",
        "Robert'); DELETE FROM accounts;--",
    ],
)
def test_bad_queries_get_clear_errors_and_harm_nothing(
    loaded: sessionmaker[Session], example_config_path: Path, query: str
) -> None:
    icp = load_config(example_config_path).icp
    with pytest.raises((QueryError, AccountNotFoundError)) as caught:
        fit_for(loaded, "T1", query, icp)
    assert "\n" not in str(caught.value)
    assert len(list(iter_accounts(loaded, "T1"))) == 12


def test_adhoc_prospects_are_scored_from_the_fields_given(
    example_config_path: Path, loaded: sessionmaker[Session]
) -> None:
    icp = load_config(example_config_path).icp
    answer = fit_for(loaded, "T1", "Newco industry=Software employees=300 country=United States", icp)
    assert (answer.account, answer.account_id, answer.matched_from) == ("Newco", None, "ad hoc")
    assert [c.matched for c in answer.fit.criteria] == [True, True, True, None]
    assert answer.fit.score == 80
    assert parse_adhoc("Newco") is None
    adhoc = parse_adhoc('employees=300 country="United Kingdom" industry=Financial Services')
    assert adhoc is not None
    assert adhoc.fields == {
        "employees": "300",
        "country": "United Kingdom",
        "industry": "Financial Services",
    }


def test_score_all_ranks_and_counts_tiers(loaded: sessionmaker[Session], example_config_path: Path) -> None:
    icp = load_config(example_config_path).icp
    overview = score_all(loaded, "T1", icp)
    assert overview.total == 12 and sum(overview.tier_counts.values()) == 12
    scores = [(list(icp.tiers).index(s.fit.tier), -s.fit.score) for s in overview.accounts]
    assert scores == sorted(scores)
    tailspin = next(s for s in overview.accounts if s.name == "Tailspin Toys")
    assert tailspin.fit.disqualified_by == ["Too small"] and tailspin.fit.tier == "D"
    only_a = score_all(loaded, "T1", icp, tier="A")
    assert only_a.accounts and {s.fit.tier for s in only_a.accounts} == {"A"}


def test_criteria_can_use_extra_columns_from_the_crm_export(loaded: sessionmaker[Session]) -> None:
    """Salesforce's Tech_Stack__c and Segment__c become fields `tech_stack` and `segment`."""
    config = parse_config(
        """
icp:
  version: extras
  criteria:
    - {name: Runs Salesforce, field: tech_stack, contains: Salesforce, weight: 50}
    - {name: Mid-market, field: segment, any_of: [mid-market], weight: 50}
  tiers: {A: 100, B: 50, C: 0}
"""
    )
    acme = fit_for(loaded, "T1", "Acme", config.icp)
    assert [(c.name, c.matched) for c in acme.fit.criteria] == [
        ("Runs Salesforce", True),
        ("Mid-market", True),
    ]
    assert acme.fit.criteria[0].detail == "tech stack includes Salesforce"
    assert (acme.fit.score, acme.fit.tier) == (100, "A")
    litware = fit_for(loaded, "T1", "Litware", config.icp)  # empty tech stack cell: unknown, not a miss
    assert [c.matched for c in litware.fit.criteria] == [None, False]


def test_warm_name_keys_are_used_and_a_stale_id_in_them_is_skipped(
    session_factory: sessionmaker[Session], example_config_path: Path
) -> None:
    _import(session_factory, SF, "T1")
    icp = load_config(example_config_path).icp
    with session_factory() as session:
        keys = AccountRepository(session, "T1").name_keys()
    warm = {**keys, 999_999: "contoso pharmaceuticals"}  # an account deleted since the keys were read
    answer = fit_for(session_factory, "T1", "Contso Ltd", icp, name_keys=warm)
    assert answer.account == "Contoso Ltd" and answer.matched_from == "fuzzy"
    with pytest.raises(AccountNotFoundError) as caught:
        fit_for(session_factory, "T1", "Contoso Pharmaceuticls", icp, name_keys=warm)
    assert 999_999 not in [s.id for s in caught.value.suggestions]
