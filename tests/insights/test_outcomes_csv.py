"""Unit tests for insights.outcomes_csv: CRM deal exports in, closed deals and their kinds out."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from insights.accounts_csv import AccountsFileError, decode_csv_bytes
from insights.outcomes_csv import (
    DealRecord,
    OutcomesFileError,
    ParsedOutcomes,
    deal_class,
    detect_layout,
    note_details,
    note_text,
    outcome_of,
    parse_date,
    parse_outcomes_csv,
    picklist_reasons,
    posted_at,
    stage_status,
    tagging_text,
)
from tests.conftest import DATA

SF_HEADER = "Id,Name,Account.Name,StageName,CloseDate,Amount,Type,Loss_Reason__c,Description"
HS_HEADER = (
    "Record ID,Deal Name,Associated Company,Deal Stage,Close Date,Amount,Deal Type,"
    "Closed Lost Reason,Closed Won Reason"
)


def parse(*rows: str, header: str = SF_HEADER) -> ParsedOutcomes:
    return parse_outcomes_csv("\n".join([header, *rows]) + "\n", "deals.csv")


def file_error(*rows: str, header: str = SF_HEADER) -> OutcomesFileError:
    with pytest.raises(OutcomesFileError) as info:
        parse(*rows, header=header)
    error = info.value
    assert isinstance(error, AccountsFileError)  # the CLI's one-line error path
    assert "\n" not in str(error) and str(error).startswith("deals.csv: ")
    return error


def by_id(parsed: ParsedOutcomes) -> dict[str, DealRecord]:
    return {r.deal_id: r for r in parsed.records}


# --- the two layouts ---------------------------------------------------------------------------


def test_salesforce_sample_export_gives_the_contract_kinds() -> None:
    path = DATA / "salesforce_opportunities.csv"
    parsed = parse_outcomes_csv(decode_csv_bytes(path.read_bytes(), path.name), path.name)
    assert parsed.layout == "salesforce" and parsed.rows == 40 and not parsed.warnings
    assert parsed.date_order is None  # ISO dates only
    kinds = [outcome_of(r) for r in parsed.records if r.closed]
    assert sum(o.kind == "win" for o in kinds) == 12
    assert sum(o.kind == "loss" for o in kinds) == 12
    assert sum(o.kind == "renewal_loss" for o in kinds) == 3
    assert sum(o.kind == "customer_win" for o in kinds) == 3
    assert sum(o.renewal_kept for o in kinds) == 4 and all(o.kind is None for o in kinds if o.renewal_kept)
    assert parsed.open_stages == {
        "Negotiation/Review": 2,
        "Proposal/Price Quote": 1,
        "Qualification": 1,
        "Prospecting": 1,
    }
    assert [r.status for r in parsed.records].count("not_an_outcome") == 1  # closed lost as "Duplicate"
    acme = parsed.records[0]
    assert (acme.deal_id, acme.account, acme.close_date, acme.amount, acme.currency) == (
        "0065e00000A00QqIAQ",
        "Acme Corp",
        date(2026, 6, 4),
        96000.0,
        "USD",
    )
    assert parsed.ts(acme) == "sf:0065e00000A00QqIAQ"


def test_hubspot_sample_export_with_bom_and_label_stages() -> None:
    path = DATA / "hubspot_deals.csv"
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    parsed = parse_outcomes_csv(decode_csv_bytes(data, path.name), path.name)
    assert parsed.layout == "hubspot" and parsed.rows == 40
    records = by_id(parsed)
    renewal = records["20488731001"]  # "Closed won", Renewal
    assert outcome_of(renewal).renewal_kept and renewal.close_date == date(2026, 5, 29)
    assert renewal.won_reason == "Renewed early for a multi-year discount"
    assert records["20488731297"].status == "won"  # the internal value "closedwon"
    assert outcome_of(records["20488731223"]).kind == "customer_win"  # Existing Business won
    assert outcome_of(records["20488732185"]).kind == "renewal_loss"  # Existing Business lost
    assert parsed.ts(renewal) == "hs:20488731001"
    assert sum(parsed.open_stages.values()) == 5


def test_layout_is_detected_from_the_header_with_extra_columns_and_report_spellings() -> None:
    assert detect_layout([*SF_HEADER.split(","), "Probability", "Owner.Name"]) == "salesforce"
    assert detect_layout([*HS_HEADER.split(","), "Pipeline", "Deal owner"]) == "hubspot"
    report = "Opportunity ID,Opportunity Name,Account Name,Stage,Close Date,Amount,Type,Loss Reason"
    assert detect_layout(report.split(",")) == "salesforce"
    assert detect_layout(["name", "domain", "industry"]) is None
    parsed = parse("006A,Acme - Core,Acme Corp,Closed Won,2026-10-05,100,,,", header=report)
    assert parsed.records[0].status == "won"


# --- the kind mapping --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("deal_type", "stage", "kind", "kept"),
    [
        ("New Business", "Closed Won", "win", False),
        ("New Business", "Closed Lost", "loss", False),
        ("", "Closed Won", "win", False),
        ("", "Closed Lost", "loss", False),
        ("Renewal", "Closed Won", None, True),
        ("Renewal", "Closed Lost", "renewal_loss", False),
        ("Existing Business", "Closed Won", "customer_win", False),
        ("Existing Business", "Closed Lost", "renewal_loss", False),
        ("Upsell", "Closed Won", "customer_win", False),
        ("Expansion", "Closed Lost", "renewal_loss", False),
        ("Existing Customer - Upgrade", "Closed Won", "customer_win", False),
        ("New Customer", "Closed Won", "win", False),
        ("newbusiness", "closedwon", "win", False),
        ("existingbusiness", "closedlost", "renewal_loss", False),
    ],
)
def test_deal_type_and_stage_decide_the_kind(
    deal_type: str, stage: str, kind: str | None, kept: bool
) -> None:
    record = parse(f"006A,Deal,Acme Corp,{stage},2026-10-05,100,{deal_type},,").records[0]
    outcome = outcome_of(record)
    assert (outcome.kind, outcome.renewal_kept) == (kind, kept)
    assert ("renewal" in note_details(record, "salesforce")) is kept


def test_stage_spellings() -> None:
    assert (
        stage_status("Closed Won")
        == stage_status("closedwon")
        == stage_status("Closed won (Renewals)")
        == "won"
    )
    assert stage_status("Closed Lost") == stage_status("CLOSED_LOST") == stage_status("closedlost") == "lost"
    assert stage_status("Negotiation/Review") == stage_status("contractsent") == "open"
    # A custom stage name is decided by Salesforce's IsClosed / IsWon when the export has them.
    assert stage_status("Signed - Countersigned", is_won=True, is_closed=True) == "won"
    assert stage_status("Disqualified", is_won=False, is_closed=True) == "lost"
    assert stage_status("Disqualified", is_won=False, is_closed=False) == "open"


def test_deal_types_and_an_unknown_one_read_as_new_business_with_a_warning() -> None:
    assert deal_class(None) == deal_class("") == deal_class("New Business") == "new"
    assert deal_class("Renewal") == deal_class("Renewal - Multi-year") == "renewal"
    assert deal_class("Cross-sell") == deal_class("Add-On") == deal_class("Expansion") == "existing"
    assert deal_class("Partner") is None
    parsed = parse(
        "006A,Deal,Acme Corp,Closed Won,2026-10-05,100,Partner,,",
        "006B,Deal,Acme Corp,Closed Won,2026-10-06,100,Partner,,",
    )
    assert [outcome_of(r).kind for r in parsed.records] == ["win", "win"]
    assert len(parsed.warnings) == 1
    assert "deal type 'Partner' (2 rows)" in str(parsed.warnings[0])
    assert "column 'Type'" in str(parsed.warnings[0])


def test_open_deals_are_counted_and_not_validated_beyond_their_id() -> None:
    parsed = parse(
        "006A,Deal,Acme Corp,Prospecting,someday,lots,,,",
        "006B,Deal,Acme Corp,Closed Won,2026-10-05,100,,,",
    )
    assert [r.status for r in parsed.records] == ["open", "won"]
    assert parsed.open_stages == {"Prospecting": 1}


def test_a_duplicate_or_test_record_is_no_outcome() -> None:
    parsed = parse(
        "006A,Deal,Acme Corp,Closed Lost,2026-10-05,100,,Duplicate,",
        "006B,Deal,Acme Corp,Closed Lost,2026-10-05,100,,Test Record,",
        "006C,Deal,Acme Corp,Closed Lost,2026-10-05,100,,Price,",
    )
    assert [r.status for r in parsed.records] == ["not_an_outcome", "not_an_outcome", "lost"]


def test_a_repeated_deal_keeps_the_later_row_with_a_warning() -> None:
    parsed = parse(
        "006A,Deal,Acme Corp,Closed Won,2026-10-05,100,,,",
        "006B,Other,Acme Corp,Closed Won,2026-10-05,100,,,",
        "006A,Deal,Acme Corp,Closed Lost,2026-10-07,100,,Price,",
    )
    assert parsed.repeated_in_file == 1
    assert [(r.deal_id, r.status) for r in parsed.records] == [("006B", "won"), ("006A", "lost")]
    assert "row 3 (line 4), column 'Id': repeats deal 006A of row 1" in str(parsed.warnings[0])


# --- dates and amounts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "2026-10-05",
        "2026-10-05T00:00:00.000Z",
        "2026-10-05 14:32",
        "2026/10/05",
        "10/05/2026",
        "10/5/26",
        "10-05-2026",
        "05.10.2026",
        "5.10.26",
        "Oct 5, 2026",
        "October 5, 2026",
        "5 Oct 2026",
        "05-Oct-2026",
    ],
)
def test_crm_spellings_of_a_date(text: str) -> None:
    assert parse_date(text) == date(2026, 10, 5)


def test_slashed_dates_are_month_first_unless_the_file_shows_day_first() -> None:
    us = parse(
        "006A,Deal,Acme Corp,Closed Won,10/05/2026,100,,,",
        "006B,Deal,Acme Corp,Closed Won,10/25/2026,100,,,",
    )
    assert us.date_order == "month_first" and not us.warnings
    assert [r.close_date for r in us.records] == [date(2026, 10, 5), date(2026, 10, 25)]

    european = parse(
        "006A,Deal,Acme Corp,Closed Won,10/05/2026,100,,,",
        "006B,Deal,Acme Corp,Closed Won,25/10/2026,100,,,",
    )
    assert european.date_order == "day_first"
    assert [r.close_date for r in european.records] == [date(2026, 5, 10), date(2026, 10, 25)]

    ambiguous = parse("006A,Deal,Acme Corp,Closed Won,10/05/2026,100,,,")
    assert ambiguous.records[0].close_date == date(2026, 10, 5)
    assert "could be month/day or day/month; read as month/day (US)" in str(ambiguous.warnings[0])


def test_a_file_mixing_date_orders_is_refused_at_the_contradicting_row() -> None:
    error = file_error(
        "006A,Deal,Acme Corp,Closed Won,10/25/2026,100,,,",
        "006B,Deal,Acme Corp,Closed Won,10/05/2026,100,,,",
        "006C,Deal,Acme Corp,Closed Won,25/10/2026,100,,,",
    )
    assert str(error.problems[0]).startswith("row 3 (line 4), column 'CloseDate': '25/10/2026' is day/month")
    assert "row 1 ('10/25/2026') is month/day" in str(error)


def test_an_unreadable_date_is_refused_with_row_line_and_column() -> None:
    error = file_error(
        "006A,Deal,Acme Corp,Closed Won,2026-10-05,100,,,",
        "006B,Deal,Acme Corp,Closed Won,2026-10-06,100,,,",
        "006C,Deal,Acme Corp,Closed Lost,next Tuesday,100,,,",
        "006D,Deal,Acme Corp,Closed Lost,2026-02-30,100,,,",
        "006E,Deal,Acme Corp,Closed Lost,,100,,,",
    )
    assert str(error) == (
        "deals.csv: row 3 (line 4), column 'CloseDate': 'next Tuesday' is not a date (write e.g. "
        "2026-10-05, 10/05/2026 or 05.10.2026) (2 more problems in the file)"
    )
    assert "not a date on the calendar" in str(error.problems[1])
    assert (
        str(error.problems[2])
        == "row 5 (line 6), column 'CloseDate': is empty; a closed deal needs its close date"
    )


def test_amounts_as_crms_write_them_and_a_currency_column() -> None:
    parsed = parse(
        '006A,Deal,Acme Corp,Closed Won,2026-10-05,"$12,500.00",,,',
        "006B,Deal,Acme Corp,Closed Won,2026-10-05,12500,,,",
        '006C,Deal,Acme Corp,Closed Won,2026-10-05,"12.500,00 €",,,',
        "006D,Deal,Acme Corp,Closed Won,2026-10-05,,,,",
    )
    assert [(r.amount, r.currency) for r in parsed.records] == [
        (12500.0, "USD"),
        (12500.0, "USD"),
        (12500.0, "EUR"),
        (None, "USD"),
    ]
    with_currency = parse(
        "006A,Deal,Acme Corp,Closed Won,2026-10-05,12500,,,,GBP",
        header=SF_HEADER + ",CurrencyIsoCode",
    )
    assert with_currency.records[0].currency == "GBP"
    error = file_error("006A,Deal,Acme Corp,Closed Won,2026-10-05,twelve grand,,,")
    assert "row 1 (line 2), column 'Amount': 'twelve grand' is not an amount" in str(error)


# --- bad files ---------------------------------------------------------------------------------


def test_a_missing_required_column_is_named() -> None:
    error = file_error("006A,Deal,Closed Won,2026-10-05", header="Id,Name,StageName,CloseDate")
    assert str(error) == (
        "deals.csv: line 1, column 'Account.Name': is missing: a Salesforce Opportunity export needs "
        "'Account.Name'; add it to the export"
    )
    error = file_error("1,Deal,Acme,closedwon", header="Record ID,Deal Name,Associated Company,Deal Stage")
    assert "column 'Close Date': is missing: a HubSpot deals export needs 'Close Date'" in str(error)


def test_an_accounts_export_is_refused_with_a_hint() -> None:
    path = DATA / "salesforce_accounts.csv"
    with pytest.raises(OutcomesFileError) as info:
        parse_outcomes_csv(path.read_text(encoding="utf-8"), path.name)
    assert "is not an opportunity or deal export" in str(info.value)
    assert "import it with 'icp-bot accounts import'" in str(info.value)


def test_rows_without_an_id_and_extra_cells_are_refused_and_empty_files_too() -> None:
    error = file_error(
        ",Deal,Acme Corp,Closed Won,2026-10-05,100,,,",
        "006B,Deal,Acme Corp,Closed Won,2026-10-05,100,,,,surplus",
    )
    assert str(error.problems[0]) == "row 1 (line 2), column 'Id': is empty; every deal needs its CRM id"
    assert str(error.problems[1]) == "row 2 (line 3): has 10 cells but the header has 9 columns"
    assert "has a header but no deal rows" in str(file_error())
    with pytest.raises(OutcomesFileError, match="is empty: no header row"):
        parse_outcomes_csv("", "deals.csv")


def test_the_wrong_encoding_is_refused_with_its_line_and_the_option_that_fixes_it() -> None:
    data = f"{SF_HEADER}\n006A,Deal,Caf\xe9 Nord,Closed Won,2026-10-05,100,,,\n".encode("cp1252")
    with pytest.raises(AccountsFileError) as info:
        decode_csv_bytes(data, "deals.csv")
    assert "line 2: byte 0xe9 is not valid UTF-8" in str(info.value) and "--encoding cp1252" in str(
        info.value
    )
    parsed = parse_outcomes_csv(decode_csv_bytes(data, "deals.csv", "cp1252"), "deals.csv")
    assert parsed.records[0].account == "Café Nord"


def test_an_empty_account_is_kept_with_a_warning_and_hubspot_lists_are_cut_to_the_primary() -> None:
    parsed = parse(
        "1,Deal,,closedwon,2026-10-05,100,,,",
        "2,Deal,Acme Corp (12345);Fabrikam Systems,closedwon,2026-10-05,100,,,",
        header=HS_HEADER,
    )
    assert [r.account for r in parsed.records] == [None, "Acme Corp"]
    assert "column 'Associated Company': is empty; the outcome is kept without an account" in str(
        parsed.warnings[0]
    )


# --- what a closed deal says -------------------------------------------------------------------


def test_readable_line_details_and_time_of_a_closed_lost_deal() -> None:
    record = parse(
        '006A,Acme - Platform,Acme Corp,Closed Lost,2026-10-05,"$48,000",New Business,'
        'Lost to Competitor,"Went with Gong after a bake-off"'
    ).records[0]
    assert note_text(record) == (
        "Closed Lost: Acme - Platform — Loss reason: Lost to Competitor — Went with Gong after a bake-off"
    )
    assert note_details(record, "salesforce") == {
        "stage": "Closed Lost",
        "deal_type": "New Business",
        "deal_name": "Acme - Platform",
        "loss_reason": "Lost to Competitor",
        "description": "Went with Gong after a bake-off",
        "layout": "salesforce",
    }
    assert posted_at(record) == datetime(2026, 10, 5, 12, tzinfo=UTC)
    text, codes = tagging_text(record)
    assert text == "Outcome: Lost. Loss reason: Lost to Competitor. Went with Gong after a bake-off"
    assert codes == ()


def test_known_picklist_values_give_their_codes_and_the_tagger_reads_only_the_rest() -> None:
    assert picklist_reasons("No Decision / Non-Responsive") == ("no_decision",)
    assert picklist_reasons("Lack of Adoption") == ("adoption",)
    assert picklist_reasons("Price") is None  # the tagger reads it
    record = parse(
        "006A,Renewal,Acme Corp,Closed Lost,2026-10-05,100,Renewal,No Decision / Non-Responsive,Went quiet"
    ).records[0]
    assert note_text(record) == (
        "Closed Lost: Renewal — Renewal — Loss reason: No Decision / Non-Responsive — Went quiet"
    )
    assert tagging_text(record) == ("Outcome: Lost. Went quiet", ("no_decision",))
    won = parse("006B,Deal,Acme Corp,Closed Won,2026-10-05,100,,,").records[0]
    assert tagging_text(won) == (None, ())


def test_long_descriptions_are_shortened_in_the_line_and_the_details() -> None:
    record = parse(f"006A,Deal,Acme Corp,Closed Lost,2026-10-05,100,,Price,{'word ' * 400}").records[0]
    assert len(note_text(record)) < 400 and note_text(record).endswith("…")
    assert len(note_details(record, "salesforce")["description"]) == 500
