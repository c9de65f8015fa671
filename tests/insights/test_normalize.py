"""Unit tests for insights.normalize: names, domains, countries, numbers and lists."""

from __future__ import annotations

import pytest

from insights.normalize import (
    compact_key,
    domain_stem,
    fold,
    format_number,
    humanize_enum,
    looks_like_domain,
    name_key,
    normalize_country,
    normalize_domain,
    parse_number,
    split_list,
)

# --- fold --------------------------------------------------------------------------------------


def test_fold_casefolds_strips_accents_and_collapses_spaces() -> None:
    assert fold("  ÉCOLE   Straße \t") == "ecole strasse"


# --- name_key ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Acme",
        "ACME",
        "acme",
        "Acme Inc",
        "Acme, Inc.",
        "Acme Incorporated",
        "Acme Corp",
        "ACME Corp.",
        "Acme Corporation",
        "Acme Ltd",
        "Acme Ltd.",
        "Acme Limited",
        "Acme LLC",
        "Acme GmbH",
        "Acme AG",
        "Acme Oy",
        "Acme Oyj",
        "Acme AB",
        "Acme AB (publ)",
        "Acme Sp. z o.o.",
        "Acme sp. z o. o.",
        "Acme Pty Ltd",
        "Acme Pty. Ltd.",
        "Acme S.A.",
        "Acme S.p.A.",
        "Acme B.V.",
        "Acme Pte. Ltd.",
        "Acme Pvt. Ltd.",
        "Acme Private Limited",
        "Acme Co Ltd",
        "Acme Holdings Inc",
        "Acme Group",
        "The Acme Company",
        "  Acme   Corp  ",
        "Acme_Corp",
    ],
)
def test_name_key_strips_case_punctuation_and_legal_suffixes(name: str) -> None:
    assert name_key(name) == "acme"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Litware & Sons Publishing, Inc.", "litware and sons publishing"),
        ("Woodgrove Credit Union", "woodgrove credit union"),
        ("Café Ñandú Oy", "cafe nandu"),
        ("Contoso Pharmaceuticals", "contoso pharmaceuticals"),
        ("Corp Inc", "corp"),
    ],
)
def test_name_key_keeps_meaningful_words(name: str, expected: str) -> None:
    assert name_key(name) == expected


@pytest.mark.parametrize("name", ["Inc", "Group", "AB", "The", "Holdings"])
def test_name_key_never_strips_a_name_to_nothing(name: str) -> None:
    # A company literally called "Group" keeps its one word.
    assert name_key(name) == name.lower()


def test_name_key_of_empty_or_punctuation_only_text_is_empty() -> None:
    assert name_key("") == ""
    assert name_key("   ") == ""
    assert name_key("!!! ...") == ""


def test_name_key_strips_gmbh_and_co_kg() -> None:
    assert name_key("Acme GmbH & Co. KG") == "acme"


@pytest.mark.parametrize("name", ["Acme L.L.C.", "Acme P.L.C.", "Acme S.A.S."])
def test_name_key_strips_dotted_legal_forms(name: str) -> None:
    assert name_key(name) == "acme"


# --- compact_key -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Acme Corp", "acmecorp"),
        ("AcmeCorp", "acmecorp"),
        ("ACME CORP.", "acmecorp"),
        ("Acme Sp. z o.o.", "acmespzoo"),
        ("Litware & Sons", "litwareandsons"),
        ("Café Oy", "cafeoy"),
        ("", ""),
    ],
)
def test_compact_key_removes_spaces_and_punctuation_but_keeps_suffixes(name: str, expected: str) -> None:
    assert compact_key(name) == expected


def test_acme_corp_and_acmecorp_meet_on_the_compact_key() -> None:
    assert compact_key("Acme Corp") == compact_key("AcmeCorp")
    assert name_key("Acme Corp") != name_key("AcmeCorp")


# --- domains -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "acmecorp.com",
        "ACMECORP.COM",
        "www.acmecorp.com",
        "www.acmecorp.com/",
        "http://acmecorp.com",
        "https://www.acmecorp.com/about",
        "HTTP://WWW.AcmeCorp.COM",
        "https://acmecorp.com/about?x=1#team",
        "acmecorp.com:8080/path",
        "  acmecorp.com  ",
        "acmecorp.com.",
    ],
)
def test_normalize_domain_reduces_urls_to_the_bare_host(value: str) -> None:
    assert normalize_domain(value) == "acmecorp.com"


def test_normalize_domain_keeps_subdomains_other_than_www() -> None:
    assert normalize_domain("ftp://files.acme.co.uk/pub") == "files.acme.co.uk"


@pytest.mark.parametrize(
    "junk",
    ["", "   ", "-", "n/a", "N/A", "none", "localhost", "acme corp.com", "https://", "www.", "http://[::1"],
)
def test_normalize_domain_returns_none_for_junk(junk: str) -> None:
    assert normalize_domain(junk) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("acmecorp.com", True),
        ("www.acmecorp.com", True),
        ("https://acmecorp.com/about", True),
        ("Acme Corp", False),
        ("acme corp.com", False),
        ("acme", False),
        ("", False),
    ],
)
def test_looks_like_domain(text: str, expected: bool) -> None:
    assert looks_like_domain(text) is expected


@pytest.mark.parametrize(
    ("domain", "stem"),
    [
        ("acmecorp.com", "acmecorp"),
        ("acme.io", "acme"),
        ("shop.acme.com", "acme"),
        ("acme.co.uk", "acme"),
        ("sub.acme.co.uk", "acme"),
        ("acme.com.au", "acme"),
        ("acme.org.uk", "acme"),
        ("acme", "acme"),
    ],
)
def test_domain_stem_is_the_registrable_label(domain: str, stem: str) -> None:
    assert domain_stem(domain) == stem


# --- parse_number ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0.0),
        ("850", 850.0),
        ("  42  ", 42.0),
        ("1,200", 1200.0),
        ("1 200", 1200.0),
        ("1\u00a0200", 1200.0),
        ("1_000", 1000.0),
        ("1.200.000", 1_200_000.0),
        ("1,200,000", 1_200_000.0),
        ("2,5", 2.5),
        ("12,34", 12.34),
        ("0,5", 0.5),
        ("0.123", 0.123),
        ("0,123", 0.123),
        (",5", 0.5),
        ("1,234.56", 1234.56),
        ("1.234,56", 1234.56),
        ("1,000,000.00", 1_000_000.0),
        ("-5", -5.0),
        ("$25,000,000", 25_000_000.0),
        ("USD 1,000", 1000.0),
        ("EUR 3M", 3_000_000.0),
        ("€3m", 3_000_000.0),
        ("£1.5k", 1500.0),
        ("1.2M", 1_200_000.0),
        ("1.5 M", 1_500_000.0),
        ("3mm", 3_000_000.0),
        ("850k", 850_000.0),
        ("850K", 850_000.0),
        ("2B", 2_000_000_000.0),
        ("1bn", 1_000_000_000.0),
    ],
)
def test_parse_number_reads_crm_and_spreadsheet_spellings(text: str, expected: float) -> None:
    assert parse_number(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "   ", "abc", "k", "-", "$", "100%", "1e5", "twelve", "12 apples"])
def test_parse_number_returns_none_for_text_that_is_not_a_number(text: str) -> None:
    assert parse_number(text) is None


# --- countries ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("US", "United States"),
        ("us", "United States"),
        ("USA", "United States"),
        ("U.S.", "United States"),
        ("U.S.A.", "United States"),
        ("United States of America", "United States"),
        ("United States", "United States"),
        ("UK", "United Kingdom"),
        ("U.K.", "United Kingdom"),
        ("GB", "United Kingdom"),
        ("gb", "United Kingdom"),
        ("Great Britain", "United Kingdom"),
        ("England", "United Kingdom"),
        ("FIN", "Finland"),
        ("FI", "Finland"),
        ("Suomi", "Finland"),
        ("  finland ", "Finland"),
        ("SE", "Sweden"),
        ("Sverige", "Sweden"),
        ("DE", "Germany"),
        ("Deutschland", "Germany"),
        ("The Netherlands", "Netherlands"),
        ("Holland", "Netherlands"),
        ("CA", "Canada"),
        ("CAN", "Canada"),
        ("Czech Republic", "Czechia"),
        ("Cote d'Ivoire", "Côte d'Ivoire"),
    ],
)
def test_normalize_country_maps_codes_and_variants_to_one_english_name(value: str, expected: str) -> None:
    assert normalize_country(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("Atlantis", "Atlantis"), ("  Atlantis  ", "Atlantis"), ("Mars Colony 7", "Mars Colony 7"), ("", "")],
)
def test_normalize_country_keeps_unknown_values_trimmed(value: str, expected: str) -> None:
    assert normalize_country(value) == expected


def test_normalize_country_gives_one_spelling_for_russia() -> None:
    assert normalize_country("RU") == normalize_country("Russia")


# --- format_number -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "0"),
        (850, "850"),
        (850.0, "850"),
        (1200, "1,200"),
        (999_999, "999,999"),
        (1_000_000, "1M"),
        (1_200_000, "1.2M"),
        (25_000_000, "25M"),
        (100_000_000, "100M"),
        (1_000_000_000, "1B"),
        (1_500_000_000, "1.5B"),
        (12_500_000_000, "12.5B"),
        (2.5, "2.5"),
        (0.123, "0.12"),
        (-1200, "-1,200"),
        (-25_000_000, "-25M"),
    ],
)
def test_format_number_is_compact_and_human(value: float, expected: str) -> None:
    assert format_number(value) == expected


def test_format_number_does_not_print_1000m() -> None:
    assert format_number(999_999_999) == "1B"


# --- split_list and humanize_enum --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Salesforce; Slack, AWS | Okta", ["Salesforce", "Slack", "AWS", "Okta"]),
        ("Salesforce;Slack", ["Salesforce", "Slack"]),
        ("a\nb", ["a", "b"]),
        (" x ;; y ", ["x", "y"]),
        ("one", ["one"]),
        ("", []),
        (" ; , | ", []),
    ],
)
def test_split_list_splits_and_trims_items(value: str, expected: list[str]) -> None:
    assert split_list(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("COMPUTER_SOFTWARE", "Computer Software"),
        ("FINANCIAL_SERVICES", "Financial Services"),
        ("Software", "Software"),
        ("IT", "IT"),
        ("computer_software", "computer_software"),
    ],
)
def test_humanize_enum_only_rewrites_hubspot_internal_values(value: str, expected: str) -> None:
    assert humanize_enum(value) == expected
