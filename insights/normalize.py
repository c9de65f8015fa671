"""Normalisation of company names, domains, countries and numbers.

Pure functions shared by import, name resolution and (later) tagging, so that "ACME Corp.",
"acme corp" and "Acme Corporation" reduce to the same key everywhere.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from urllib.parse import urlsplit

# Legal-form suffixes stripped from the end of a company name (after punctuation is removed and the
# text lower-cased). Multi-word forms are listed as they appear once punctuation is gone.
LEGAL_SUFFIXES: frozenset[str] = frozenset({
    "inc", "incorporated", "corp", "corporation", "co", "company", "ltd", "limited", "llc",
    "llp", "lp", "plc", "gmbh", "ag", "kg", "se", "oy", "oyj", "ab", "publ", "as", "asa",
    "aps", "a s", "sa", "s a", "sas", "sarl", "srl", "spa", "s p a", "bv", "b v", "nv", "n v",
    "pty", "pty ltd", "kk", "k k", "ltda", "sl", "s l", "oü", "ou", "sp z o o", "spzoo",
    "pte", "pte ltd", "pvt", "pvt ltd", "private limited", "holdings", "group",
    # "GmbH & Co. KG" once "&" reads "and"; dotted forms once the dots are gone.
    "gmbh and co kg", "gmbh and co", "and co kg", "co kg", "and co",
    "l l c", "l l p", "l p", "p l c", "s a s", "s a r l", "s r l", "a g", "i n c",
})  # fmt: skip
_SUFFIX_MAX_WORDS = max(len(s.split()) for s in LEGAL_SUFFIXES)
# "group" and "holdings" are stripped only when something meaningful remains before them.
_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)
_SPACES = re.compile(r"\s+")
_DOMAIN_LIKE = re.compile(
    r"^(?:[a-z][a-z0-9+.-]*://)?(?:www\.)?[a-z0-9-]+(?:\.[a-z0-9-]+)+(?:[/:?#].*)?$", re.I
)


def fold(text: str) -> str:
    """Case-fold, strip accents and collapse white space: the base of every comparison."""
    if text.isascii():
        return " ".join(text.casefold().split())
    decomposed = unicodedata.normalize("NFKD", text)
    no_marks = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SPACES.sub(" ", no_marks.casefold()).strip()


def _words(name: str) -> list[str]:
    text = fold(name).replace("&", " and ")
    text = _PUNCT.sub(" ", text).replace("_", " ")
    return text.split()


def _strip_suffixes(words: list[str]) -> list[str]:
    changed = True
    while changed and len(words) > 1:
        changed = False
        for n in range(min(_SUFFIX_MAX_WORDS, len(words) - 1), 0, -1):
            if " ".join(words[-n:]) in LEGAL_SUFFIXES:
                words = words[:-n]
                changed = True
                break
    if len(words) > 1 and words[0] == "the":
        words = words[1:]
    return words


@lru_cache(maxsize=262_144)
def name_key(name: str) -> str:
    """The matching key of a company name: folded, punctuation-free, legal suffixes removed.

    >>> name_key("ACME Corp.")
    'acme'
    >>> name_key("Litware & Sons Publishing, Inc.")
    'litware and sons publishing'
    """
    return " ".join(_strip_suffixes(_words(name)))


def compact_key(name: str) -> str:
    """The name with every space removed, suffixes kept: "Acme Corp" and "AcmeCorp" meet here."""
    return "".join(_words(name))


def looks_like_domain(text: str) -> bool:
    """True for "acmecorp.com", "www.acmecorp.com" and "https://acmecorp.com/about"."""
    text = text.strip()
    return " " not in text and bool(_DOMAIN_LIKE.match(text))


def normalize_domain(value: str) -> str | None:
    """Reduce a website or domain to its bare host: lower-case, no scheme, no www, no path.

    Returns None for values that are not a host name ("n/a", "", "-").
    """
    text = value.strip().lower()
    if not text:
        return None
    if _BARE_HOST.fullmatch(text):  # most CRM values: no scheme, path or port to take apart
        host = text.removeprefix("www.")
        return host if "." in host and not host.startswith(".") and not host.endswith(".") else None
    if "://" not in text:
        text = "http://" + text
    try:
        host = urlsplit(text).hostname or ""
    except ValueError:
        return None
    host = host.strip(".")
    if host.startswith("www."):
        host = host[4:]
    # Letters of any script: internationalised domains (münchen.de) are kept as written.
    if "." not in host or not re.fullmatch(r"[\w.-]+", host) or "_" in host:
        return None
    return host


# Second-level labels under which companies register (acme.co.uk, acme.com.au): the stem is the
# label before them.
_BARE_HOST = re.compile(r"[a-z0-9-]+(?:\.[a-z0-9-]+)+")
_SECOND_LEVEL = frozenset({"co", "com", "org", "net", "ac", "gov", "edu", "ltd", "plc", "ne", "or"})


def domain_stem(domain: str) -> str:
    """The registrable label of a domain: "acmecorp" for acmecorp.com and acme.co.uk -> "acme"."""
    labels = domain.split(".")
    if len(labels) >= 3 and labels[-2] in _SECOND_LEVEL and len(labels[-1]) == 2:
        return labels[-3]
    return labels[-2] if len(labels) >= 2 else labels[0]


# Other ways people write a country, by ISO code; and the one name shown for some codes where
# the ISO name is not what people write.
_COUNTRY_EXTRAS = {
    "usa": "US",
    "u s": "US",
    "u s a": "US",
    "america": "US",
    "united states of america": "US",
    "uk": "GB",
    "u k": "GB",
    "great britain": "GB",
    "britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "holland": "NL",
    "the netherlands": "NL",
    "suomi": "FI",
    "sverige": "SE",
    "deutschland": "DE",
    "norge": "NO",
    "danmark": "DK",
    "uae": "AE",
    "south korea": "KR",
    "korea": "KR",
    "north korea": "KP",
    "russia": "RU",
    "turkey": "TR",
    "czech republic": "CZ",
    "vietnam": "VN",
    "iran": "IR",
}
_COUNTRY_DISPLAY = {
    "US": "United States",
    "GB": "United Kingdom",
    "RU": "Russia",
    "KR": "South Korea",
    "KP": "North Korea",
    "IR": "Iran",
    "VN": "Vietnam",
    "MD": "Moldova",
    "TZ": "Tanzania",
    "VE": "Venezuela",
    "BO": "Bolivia",
    "SY": "Syria",
    "LA": "Laos",
    "TW": "Taiwan",
}


def _key(text: str) -> str:
    return " ".join(_PUNCT.sub(" ", fold(text)).split())


@lru_cache(maxsize=1)
def _country_table() -> dict[str, str]:
    import pycountry  # imported lazily: only imports need it, and it loads a large table

    table: dict[str, str] = {}
    by_code: dict[str, str] = {}
    for country in pycountry.countries:
        code = country.alpha_2
        display = _COUNTRY_DISPLAY.get(code) or getattr(country, "common_name", None) or country.name
        by_code[code] = display
        for attr in ("alpha_2", "alpha_3", "name", "official_name", "common_name"):
            value = getattr(country, attr, None)
            if value:
                table[_key(value)] = display
    for alias, code in _COUNTRY_EXTRAS.items():
        table[alias] = by_code[code]
    for display in by_code.values():
        table[_key(display)] = display
    return table


@lru_cache(maxsize=4096)
def normalize_country(value: str) -> str:
    """Map ISO codes and common variants ("US", "USA", "U.K.", "Suomi") to one English name.

    Values that are not recognised are kept as written (trimmed), so nothing is lost.
    """
    text = value.strip()
    return _country_table().get(_key(text), text)


_HUBSPOT_ENUM = re.compile(r"^[A-Z0-9]+(?:_[A-Z0-9]+)+$")


@lru_cache(maxsize=4096)
def humanize_enum(value: str) -> str:
    """HubSpot exports some picklists as internal values: COMPUTER_SOFTWARE -> Computer Software."""
    if _HUBSPOT_ENUM.match(value):
        return " ".join(part.capitalize() for part in value.split("_"))
    return value


_MULTIPLIERS = {"k": 1e3, "m": 1e6, "mm": 1e6, "b": 1e9, "bn": 1e9}
_NUMBER = re.compile(
    r"^(?P<sign>-)?(?P<num>\d+(?:[.,]\d+)*|\d*[.,]\d+)\s*(?P<mult>k|m|mm|b|bn)?$", re.IGNORECASE
)


@lru_cache(maxsize=65_536)
def parse_number(value: str) -> float | None:
    """Parse a number as CRMs and spreadsheets write it; None when the text is not a number.

    Accepts thousands separators ("1,200", "1 200", "1.200.000"), a decimal point or a lone
    decimal comma ("2,5"), currency symbols and codes ("$25,000,000", "EUR 3M"), and k/M/B
    suffixes ("850k", "1.2M"). Empty text is not a number either: callers decide what empty means.
    """
    text = value.strip().replace("\u00a0", " ").replace("_", "")
    for token in (
        "$",
        "€",
        "£",
        "¥",
        "usd",
        "eur",
        "gbp",
        "sek",
        "nok",
        "dkk",
        "chf",
        "cad",
        "aud",
    ):
        text = text.replace(token, "").replace(token.upper(), "")
    text = text.replace(" ", "").strip()
    match = _NUMBER.match(text)
    if not match:
        return None
    digits = match.group("num")
    separators = [ch for ch in digits if ch in ".,"]
    if separators:
        last = separators[-1]
        head, _, tail = digits.rpartition(last)
        decimal = len(set(separators)) == 2 or (
            separators.count(last) == 1 and (len(tail) != 3 or head.lstrip("-") in ("", "0"))
        )
        if decimal:
            # "1,234.56", "1.234,56" or a single separator not followed by exactly 3 digits: the
            # last separator is the decimal point.
            digits = head.replace(",", "").replace(".", "") + "." + tail
        else:
            # "1,200", "1.200.000": all separators group thousands.
            digits = digits.replace(",", "").replace(".", "")
    number = float(digits)
    mult = match.group("mult")
    if mult:
        number *= _MULTIPLIERS[mult.lower()]
    return -number if match.group("sign") else number


def format_number(value: float) -> str:
    """Compact human form: 850, 1,200, 25M, 1.5B (used in fit details)."""
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value >= 1e6:
        scaled, suffix = (value / 1e9, "B") if value >= 1e9 else (value / 1e6, "M")
        if suffix == "M" and round(scaled, 1) >= 1000:  # 999,999,999 reads "1B", not "1000M"
            scaled, suffix = value / 1e9, "B"
        text = f"{scaled:.1f}".rstrip("0").rstrip(".")
        return f"{sign}{text}{suffix}"
    if value == int(value):
        return f"{sign}{int(value):,}"
    return f"{sign}{value:,.2f}".rstrip("0").rstrip(".")


def split_list(value: str) -> list[str]:
    """Split a list-valued field ("Salesforce; Slack, AWS | Okta") into its trimmed items."""
    return [item.strip() for item in re.split(r"[;,|\n]", value) if item.strip()]
