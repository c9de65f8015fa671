"""Unit tests for insights.accounts_csv: CRM exports in, canonical records or a precise error out."""

from __future__ import annotations

import pytest

from insights.accounts_csv import (
    AccountRecord,
    AccountsFileError,
    FileProblem,
    decode_csv_bytes,
    detect_layout,
    parse_accounts_csv,
    snake_case,
)

SALESFORCE_HEADER = (
    "Id,Name,Website,Industry,NumberOfEmployees,AnnualRevenue,BillingCountry,BillingState,Type,Owner.Name"
)
HUBSPOT_HEADER = (
    "Record ID,Company name,Company Domain Name,Industry,Number of Employees,Annual Revenue,"
    "Country/Region,State/Region,Lifecycle Stage,Company owner"
)
CANONICAL_HEADER = "name,domain,industry,employees,annual_revenue,country,state,type,owner,arr"


def file_error(text: str, source: str = "accounts.csv") -> AccountsFileError:
    with pytest.raises(AccountsFileError) as info:
        parse_accounts_csv(text, source)
    error = info.value
    assert error.problems
    assert "\n" not in str(error)
    assert str(error).startswith(f"{source}: ")
    return error


# --- the three layouts -------------------------------------------------------------------------


def test_salesforce_export() -> None:
    text = (
        f"{SALESFORCE_HEADER},Tech Stack\n"
        '001A000001,Acme Corp,https://www.acmecorp.com/,Software,850,"$25,000,000",USA,CA,Customer,'
        'Daniel Okafor,"Salesforce; Slack"\n'
        '001A000002,Contoso Ltd,contoso.com,Healthcare,"1,200",1.2M,UK,,Prospect,Ann Lee,\n'
    )
    parsed = parse_accounts_csv(text)
    assert parsed.layout == "salesforce"
    assert parsed.columns == {
        "Id": "salesforce_id",
        "Name": "name",
        "Website": "domain",
        "Industry": "industry",
        "NumberOfEmployees": "employees",
        "AnnualRevenue": "annual_revenue",
        "BillingCountry": "country",
        "BillingState": "state",
        "Type": "type",
        "Owner.Name": "owner",
        "Tech Stack": "extra:tech_stack",
    }
    assert parsed.records[0] == AccountRecord(
        row=1,
        line=2,
        name="Acme Corp",
        domain="acmecorp.com",
        industry="Software",
        employees=850,
        annual_revenue=25_000_000.0,
        country="United States",
        state="CA",
        type="Customer",
        owner="Daniel Okafor",
        salesforce_id="001A000001",
        extra={"tech_stack": "Salesforce; Slack"},
    )
    contoso = parsed.records[1]
    assert (contoso.row, contoso.line, contoso.name) == (2, 3, "Contoso Ltd")
    assert (contoso.employees, contoso.annual_revenue, contoso.country) == (
        1200,
        1_200_000.0,
        "United Kingdom",
    )
    assert contoso.state is None  # empty cells are unknown
    assert contoso.extra == {}
    assert parsed.warnings == []


def test_hubspot_export() -> None:
    text = (
        f"{HUBSPOT_HEADER}\n"
        "5551,Acme Corp,acmecorp.com,COMPUTER_SOFTWARE,850,25000000,United States,California,"
        "customer,Dan Ray\n"
        "5552,Fabrikam,www.fabrikam.com,Financial Services,6400,2B,FI,Uusimaa,lead,\n"
    )
    parsed = parse_accounts_csv(text)
    assert parsed.layout == "hubspot"
    assert parsed.columns["Lifecycle Stage"] == "type"
    assert parsed.columns["Record ID"] == "hubspot_id"
    acme, fabrikam = parsed.records
    assert acme == AccountRecord(
        row=1,
        line=2,
        name="Acme Corp",
        domain="acmecorp.com",
        industry="Computer Software",
        employees=850,
        annual_revenue=25_000_000.0,
        country="United States",
        state="California",
        type="Customer",
        owner="Dan Ray",
        hubspot_id="5551",
    )
    assert (fabrikam.domain, fabrikam.annual_revenue, fabrikam.country, fabrikam.type) == (
        "fabrikam.com",
        2_000_000_000.0,
        "Finland",
        "Lead",
    )
    assert fabrikam.owner is None


def test_canonical_file_with_extra_columns() -> None:
    text = (
        f"{CANONICAL_HEADER},Tech Stack,Seats (paid),crm_id,aliases\n"
        "Acme Corp,acmecorp.com,Software,850,120000000,US,California,customer,Daniel,420000,"
        '"Salesforce; Slack",12,X-1,"Acme; ACME Inc"\n'
    )
    parsed = parse_accounts_csv(text)
    assert parsed.layout == "canonical"
    assert parsed.columns["Tech Stack"] == "extra:tech_stack"
    assert parsed.columns["Seats (paid)"] == "extra:seats_paid"
    [acme] = parsed.records
    assert acme == AccountRecord(
        row=1,
        line=2,
        name="Acme Corp",
        domain="acmecorp.com",
        industry="Software",
        employees=850,
        annual_revenue=120_000_000.0,
        country="United States",
        state="California",
        type="Customer",
        owner="Daniel",
        arr=420_000.0,
        external_id="X-1",
        aliases=("Acme", "ACME Inc"),
        extra={"tech_stack": "Salesforce; Slack", "seats_paid": "12"},
    )


def test_canonical_file_with_id_and_website_columns_stays_canonical() -> None:
    text = "id,name,website,industry,employees,annual_revenue,country\n7,Acme,acme.com,Software,10,5M,US\n"
    parsed = parse_accounts_csv(text)
    [acme] = parsed.records
    assert (acme.annual_revenue, acme.country, acme.external_id) == (5_000_000.0, "United States", "7")


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("Tech Stack", "tech_stack"),
        ("Seats (paid)", "seats_paid"),
        ("  ARR — 2025 ", "arr_2025"),
        ("Région", "region"),
        ("%%%", "column"),
        ("Owner.Email", "owner_email"),
        ("Tech_Stack__c", "tech_stack"),
    ],
)
def test_snake_case(header: str, field: str) -> None:
    assert snake_case(header) == field


def test_second_column_for_a_mapped_field_becomes_an_extra() -> None:
    parsed = parse_accounts_csv("name,Company,website\nAcme,Acme Holdings,acme.com\n")
    assert parsed.columns == {"name": "name", "Company": "extra:company", "website": "domain"}
    assert parsed.records[0].name == "Acme"
    assert parsed.records[0].extra == {"company": "Acme Holdings"}


# --- delimiters, BOM, blank lines, numbers -----------------------------------------------------


def test_semicolon_delimited_file_with_european_numbers() -> None:
    text = "name;domain;employees;annual_revenue;country\nAcme, Inc.;acmecorp.com;1.200;2,5M;FIN\n"
    [acme] = parse_accounts_csv(text).records
    assert (acme.name, acme.employees, acme.annual_revenue, acme.country) == (
        "Acme, Inc.",
        1200,
        2_500_000.0,
        "Finland",
    )


def test_tab_delimited_file() -> None:
    [acme] = parse_accounts_csv("name\temployees\nAcme\t850\n").records
    assert (acme.name, acme.employees) == ("Acme", 850)


def test_utf8_bom_is_dropped_by_decoding() -> None:
    data = "\ufeffname,country\nCafé Oy,Suomi\n".encode()
    text = decode_csv_bytes(data, "accounts.csv")
    assert text == "name,country\nCafé Oy,Suomi\n"
    [cafe] = parse_accounts_csv(text).records
    assert (cafe.name, cafe.country) == ("Café Oy", "Finland")


def test_utf8_bom_with_explicit_utf8_encoding() -> None:
    text = decode_csv_bytes(b"\xef\xbb\xbfname\nAcme\n", "accounts.csv", encoding="utf-8")
    assert parse_accounts_csv(text).records[0].name == "Acme"


def test_blank_lines_are_skipped_and_lines_still_count() -> None:
    text = "name,employees\nAcme,10\n\n , \nContoso,20\n\n"
    parsed = parse_accounts_csv(text)
    assert [(r.name, r.employees) for r in parsed.records] == [("Acme", 10), ("Contoso", 20)]
    assert parsed.records[1].line == 5


def test_crlf_line_endings() -> None:
    parsed = parse_accounts_csv("name,employees\r\nAcme,10\r\nContoso,20\r\n")
    assert [(r.name, r.line) for r in parsed.records] == [("Acme", 2), ("Contoso", 3)]


def test_quoted_cell_spanning_lines_keeps_later_line_numbers_right() -> None:
    text = 'name,notes\nAcme,"first line\nsecond line"\nContoso,x\n,y\n'
    error = file_error(text)
    assert (error.problems[0].row, error.problems[0].line) == (3, 5)


@pytest.mark.parametrize(
    ("cell", "employees"),
    [("850", 850), ('"1,200"', 1200), ("1.2k", 1200), ("850.6", 851), ('" 42 "', 42), ("", None)],
)
def test_employee_counts(cell: str, employees: int | None) -> None:
    [record] = parse_accounts_csv(f"name,employees\nAcme,{cell}\n").records
    assert record.employees == employees


def test_control_characters_are_removed_from_values() -> None:
    [record] = parse_accounts_csv("name,industry\nAc\x00me\x07 Corp,Soft\x1bware\n").records
    assert (record.name, record.industry) == ("Acme Corp", "Software")


def test_unusable_website_is_a_warning_not_an_error() -> None:
    parsed = parse_accounts_csv("Id,Name,Website\n1,Acme,n/a\n")
    assert parsed.records[0].domain is None
    assert [str(w) for w in parsed.warnings] == [
        "row 1 (line 2), column 'Website': 'n/a' is not a web address; kept without a domain",
    ]


def test_progress_is_reported_at_the_end() -> None:
    calls: list[tuple[int, int]] = []
    parse_accounts_csv("name\nA\nB\n", progress=lambda done, total: calls.append((done, total)))
    assert calls[-1][0] == calls[-1][1]


# --- errors: row, line and column --------------------------------------------------------------


def test_non_numeric_employee_count_names_row_line_and_column() -> None:
    text = f"{SALESFORCE_HEADER}\n1,A,a.com,,10,,,,,\n2,B,b.com,,20,,,,,\n3,C,c.com,,lots,,,,,\n"
    error = file_error(text)
    assert error.problems == [
        FileProblem(3, 4, "NumberOfEmployees", "'lots' is not a number (write e.g. 1200, 1,200 or 1.2M)"),
    ]
    assert str(error) == (
        "accounts.csv: row 3 (line 4), column 'NumberOfEmployees': "
        "'lots' is not a number (write e.g. 1200, 1,200 or 1.2M)"
    )


def test_message_counts_the_further_problems() -> None:
    text = (
        f"{SALESFORCE_HEADER}\n1,A,a.com,,10,,,,,\n2,B,b.com,,many,,,,,\n3,C,c.com,,20,lots,,,,\n"
        "4,,d.com,,5,,,,,\n"
    )
    error = file_error(text)
    assert [(p.row, p.line, p.column) for p in error.problems] == [
        (2, 3, "NumberOfEmployees"),
        (3, 4, "AnnualRevenue"),
        (4, 5, "Name"),
    ]
    assert str(error).startswith("accounts.csv: row 2 (line 3), column 'NumberOfEmployees': 'many'")
    assert str(error).endswith(" (2 more problems in the file)")


def test_one_further_problem_is_singular() -> None:
    error = file_error("name,employees\nA,x\nB,y\n")
    assert str(error).endswith(" (1 more problem in the file)")


@pytest.mark.parametrize("value", ["-5", "1e5", "ten", "12 people"])
def test_unreadable_or_negative_numbers_are_refused(value: str) -> None:
    error = file_error(f"name,arr\nAcme,{value}\n")
    assert error.problems[0].column == "arr"
    assert f"'{value}' is not a number" in error.problems[0].message


def test_long_unreadable_number_is_shortened_in_the_message() -> None:
    error = file_error("name,employees\nAcme," + "9x" * 50 + "\n")
    assert "..." in error.problems[0].message
    assert len(error.problems[0].message) < 120


def test_no_name_column() -> None:
    error = file_error("domain,employees\nacme.com,10\n")
    problem = error.problems[0]
    assert (problem.row, problem.line, problem.column) == (None, 1, None)
    assert str(error) == (
        "accounts.csv: line 1: no name column: expected 'name' (canonical), 'Name' (Salesforce) "
        "or 'Company name' (HubSpot); found: domain, employees"
    )


@pytest.mark.parametrize(
    ("text", "column", "row", "line"),
    [
        ("name,employees\nAcme,10\n,20\n", "name", 2, 3),
        ("name,employees\nAcme,10\n   ,20\n", "name", 2, 3),
        (f"{SALESFORCE_HEADER}\n1,,a.com,,,,,,,\n", "Name", 1, 2),
        (f"{HUBSPOT_HEADER}\n1,,a.com,,,,,,,\n", "Company name", 1, 2),
    ],
)
def test_empty_name(text: str, column: str, row: int, line: int) -> None:
    error = file_error(text)
    assert error.problems == [FileProblem(row, line, column, "is empty; every account needs a name")]


def test_10000_character_name_is_refused_with_row_line_and_column() -> None:
    error = file_error("name,employees\n" + "N" * 10_000 + ",5\n")
    first = error.problems[0]
    assert (first.row, first.line, first.column) == (1, 2, "name")
    assert "10,000 characters" in first.message
    assert str(error).startswith(
        "accounts.csv: row 1 (line 2), column 'name': value is 10,000 characters long"
    )


def test_10000_character_name_is_one_problem() -> None:
    error = file_error("name,employees\n" + "N" * 10_000 + ",5\n")
    assert len(error.problems) == 1


def test_name_over_300_characters_is_refused() -> None:
    error = file_error("name\n" + "N" * 500 + "\n")
    assert [(p.row, p.line) for p in error.problems] == [(1, 2)]
    assert "500 characters long; at most 300" in str(error)


def test_name_over_300_characters_names_the_column() -> None:
    error = file_error("name\n" + "N" * 500 + "\n")
    assert error.problems[0].column == "name"


def test_over_long_value_in_another_column() -> None:
    error = file_error("name,notes\nAcme," + "x" * 2001 + "\n")
    assert error.problems == [
        FileProblem(1, 2, "notes", "value is 2,001 characters long; at most 2,000 are accepted"),
    ]


def test_row_with_more_cells_than_the_header() -> None:
    error = file_error("name,employees\nAcme,10,oops\n")
    assert error.problems == [FileProblem(1, 2, None, "has 3 cells but the header has 2 columns")]


def test_trailing_empty_cells_are_tolerated() -> None:
    assert parse_accounts_csv("name,employees\nAcme,10,,\n").records[0].employees == 10


def test_unterminated_quote() -> None:
    error = file_error('name,notes\nAcme,x\nContoso,"open\n')
    assert (error.problems[0].row, error.problems[0].line) == (2, 3)
    assert "cannot be read as CSV" in error.problems[0].message


def test_duplicate_header() -> None:
    error = file_error("name,Name\nA,B\n")
    assert error.problems == [FileProblem(None, 1, "Name", "appears twice in the header")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "accounts.csv: is empty: no header row"),
        ("name\n", "accounts.csv: has a header but no account rows"),
        ("name\n\n\n", "accounts.csv: has a header but no account rows"),
    ],
)
def test_empty_files(text: str, message: str) -> None:
    assert str(file_error(text)) == message


def test_file_problem_str() -> None:
    assert str(FileProblem(3, 4, "Col", "bad")) == "row 3 (line 4), column 'Col': bad"
    assert str(FileProblem(None, 7, None, "bad")) == "line 7: bad"
    assert str(FileProblem(None, None, None, "bad")) == "bad"


# --- decoding ----------------------------------------------------------------------------------


def test_decode_plain_utf8() -> None:
    assert decode_csv_bytes("name\nCafé\n".encode(), "a.csv") == "name\nCafé\n"


def test_decode_rejects_latin1_bytes_with_the_line() -> None:
    with pytest.raises(AccountsFileError) as info:
        decode_csv_bytes(b"name\nAcme\nContoso\nCaf\xe9 Oy\n", "accounts.csv")
    problem = info.value.problems[0]
    assert (problem.row, problem.line, problem.column) == (None, 4, None)
    assert str(info.value).startswith("accounts.csv: line 4: byte 0xe9 is not valid UTF-8")
    assert "--encoding" in str(info.value)


def test_decode_with_a_named_encoding() -> None:
    assert decode_csv_bytes(b"name\nCaf\xe9\n", "a.csv", encoding="cp1252") == "name\nCafé\n"


def test_decode_unknown_encoding() -> None:
    with pytest.raises(AccountsFileError, match="unknown encoding 'klingon'"):
        decode_csv_bytes(b"name\n", "a.csv", encoding="klingon")


@pytest.mark.parametrize(
    "data",
    [
        b"PK\x03\x04\x14\x00\x06\x00xl/workbook.xml",  # .xlsx (a zip)
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",  # .xls (OLE2)
        "name\nAcme\n".encode("utf-16-le"),  # UTF-16 text: NUL bytes
    ],
    ids=["xlsx", "xls", "utf16"],
)
def test_decode_rejects_spreadsheets_and_binary(data: bytes) -> None:
    with pytest.raises(AccountsFileError) as info:
        decode_csv_bytes(data, "accounts.xlsx")
    assert str(info.value) == (
        "accounts.xlsx: is not a CSV text file (a spreadsheet?); save it as 'CSV UTF-8' and import that"
    )


# --- detect_layout -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "layout"),
    [
        (SALESFORCE_HEADER.split(","), "salesforce"),
        (HUBSPOT_HEADER.split(","), "hubspot"),
        (CANONICAL_HEADER.split(","), "canonical"),
        (["Id", "Name", "Website"], "salesforce"),
        (["Account Name", "Industry"], "salesforce"),
        (["Name", "NumberOfEmployees"], "salesforce"),
        ([" Record ID ", "Name"], "hubspot"),
        (["Company name"], "hubspot"),
        (["name"], "canonical"),
        (["Company", "Industry"], "canonical"),
        (["company_name"], "canonical"),
        (["domain", "industry"], None),
        ([], None),
    ],
)
def test_detect_layout(headers: list[str], layout: str | None) -> None:
    assert detect_layout(headers) == layout
