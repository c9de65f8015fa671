"""Read CRM account exports into canonical account records.

Three layouts are recognised from their header row, without options: a Salesforce Account export,
a HubSpot companies export, and the canonical columns (`name, domain, industry, employees,
annual_revenue, country, state, type, owner, arr`). Every other column is kept as an extra field
that ICP criteria can name (its header in snake_case: "Tech Stack" -> `tech_stack`).

Pure: bytes in, records or an `AccountsFileError` naming row, line and column out.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from insights.normalize import (
    humanize_enum,
    normalize_country,
    normalize_domain,
    parse_number,
    split_list,
)

Layout = Literal["salesforce", "hubspot", "canonical"]
ProgressFn = Callable[[int, int], None]

MAX_NAME_LENGTH = 300
MAX_VALUE_LENGTH = 2000
CANONICAL_FIELDS = (
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
_ID_FIELDS = ("salesforce_id", "hubspot_id", "external_id")

# Folded header -> record attribute, per layout. Report exports and Data Loader spellings included.
_SALESFORCE = {
    "id": "salesforce_id",
    "account id": "salesforce_id",
    "account.id": "salesforce_id",
    "name": "name",
    "account name": "name",
    "website": "domain",
    "industry": "industry",
    "numberofemployees": "employees",
    "employees": "employees",
    "annualrevenue": "annual_revenue",
    "annual revenue": "annual_revenue",
    "billingcountry": "country",
    "billing country": "country",
    "billingstate": "state",
    "billing state": "state",
    "billing state/province": "state",
    "type": "type",
    "account type": "type",
    "owner.name": "owner",
    "account owner": "owner",
    "owner name": "owner",
    "arr__c": "arr",
    "arr": "arr",
}
_HUBSPOT = {
    "record id": "hubspot_id",
    "company id": "hubspot_id",
    "company name": "name",
    "name": "name",
    "company domain name": "domain",
    "website url": "domain",
    "industry": "industry",
    "number of employees": "employees",
    "annual revenue": "annual_revenue",
    "country/region": "country",
    "country": "country",
    "state/region": "state",
    "type": "type",
    "company owner": "owner",
    "annual recurring revenue": "arr",
    "arr": "arr",
}
_CANONICAL = {
    "name": "name",
    "company": "name",
    "company_name": "name",
    "domain": "domain",
    "website": "domain",
    "industry": "industry",
    "employees": "employees",
    "annual_revenue": "annual_revenue",
    "revenue": "annual_revenue",
    "country": "country",
    "state": "state",
    "type": "type",
    "owner": "owner",
    "arr": "arr",
    "aliases": "aliases",
    "crm_id": "external_id",
    "id": "external_id",
}
_LAYOUTS: dict[Layout, dict[str, str]] = {
    "salesforce": _SALESFORCE,
    "hubspot": _HUBSPOT,
    "canonical": _CANONICAL,
}
_NAME_HEADERS = "'name' (canonical), 'Name' (Salesforce) or 'Company name' (HubSpot)"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class FileProblem:
    row: int | None  # data row, 1-based, header excluded
    line: int | None  # line of the file where the row starts (the header is line 1)
    column: str | None
    message: str

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}" + (f" (line {self.line})" if self.line else ""))
        elif self.line is not None:
            where.append(f"line {self.line}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        return (", ".join(where) + ": " if where else "") + self.message


class AccountsFileError(ValueError):
    """The file cannot be imported; `str()` names the first problem and how many more there are."""

    def __init__(self, source: str, problems: list[FileProblem]) -> None:
        self.source = source
        self.problems = problems
        more = len(problems) - 1
        tail = f" ({more:,} more problem{'s' if more > 1 else ''} in the file)" if more > 0 else ""
        super().__init__(f"{source}: {problems[0]}{tail}")


@dataclass(frozen=True)
class AccountRecord:
    """One account as the CRM file describes it, in canonical fields."""

    row: int
    line: int
    name: str
    domain: str | None = None
    industry: str | None = None
    employees: int | None = None
    annual_revenue: float | None = None
    country: str | None = None
    state: str | None = None
    type: str | None = None
    owner: str | None = None
    arr: float | None = None
    salesforce_id: str | None = None
    hubspot_id: str | None = None
    external_id: str | None = None
    aliases: tuple[str, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ParsedAccounts:
    layout: Layout
    records: list[AccountRecord]
    columns: dict[str, str]  # header as written -> canonical field or extra:<name>
    warnings: list[FileProblem]


def snake_case(header: str) -> str:
    """The field name of an extra column: "Tech Stack" -> tech_stack, "Seats (paid)" -> seats_paid.

    Salesforce's custom-field suffix goes: "Tech_Stack__c" -> tech_stack.
    """
    folded = unicodedata.normalize("NFKD", header).encode("ascii", "ignore").decode().lower()
    folded = folded.removesuffix("__c")
    name = re.sub(r"[^a-z0-9]+", "_", folded).strip("_")
    return name or "column"


def decode_csv_bytes(data: bytes, source: str, encoding: str | None = None) -> str:
    """Decode a CSV file: UTF-8 (with or without BOM) unless an encoding is named."""
    if data[:4].count(b"\x00") >= 2 or data.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        raise AccountsFileError(
            source,
            [
                FileProblem(
                    None,
                    None,
                    None,
                    "is not a CSV text file (a spreadsheet?); save it as 'CSV UTF-8' and import that",
                )
            ],
        )
    try:
        # Excel's "CSV UTF-8" starts with a byte-order mark, whatever encoding is named.
        return data.decode(encoding or "utf-8-sig").removeprefix("\ufeff")
    except LookupError:
        raise AccountsFileError(
            source, [FileProblem(None, None, None, f"unknown encoding '{encoding}'")]
        ) from None
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise AccountsFileError(
            source,
            [
                FileProblem(
                    None,
                    line,
                    None,
                    f"byte 0x{data[exc.start]:02x} is not valid {encoding or 'UTF-8'}; re-export as "
                    f"'CSV UTF-8', or name the file's encoding with --encoding (e.g. --encoding cp1252)",
                )
            ],
        ) from None


def read_csv_header(
    text: str, source: str, error: type[AccountsFileError] = AccountsFileError
) -> tuple[Any, list[str]]:  # csv's reader type is private (_csv.Reader)
    """A strict CSV reader over `text` (delimiter sniffed from the first line) and its cleaned header."""
    first_line = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_sniff_delimiter(first_line), strict=True)
    try:
        headers = [clean_cell(h).strip('"') for h in next(reader)]
    except StopIteration:
        raise error(source, [FileProblem(None, None, None, "is empty: no header row")]) from None
    except csv.Error as exc:
        raise error(source, [FileProblem(None, 1, None, f"header cannot be read as CSV: {exc}")]) from None
    return reader, headers


def csv_rows(
    reader: Any,
    width: int,
    problems: list[FileProblem],
    progress: Callable[[int, int], None] | None,
    lines_total: int,
) -> Iterator[tuple[int, int, list[str]]]:
    """(row number, first line, cells) of each non-blank data row.

    A row with more non-empty cells than the header has columns, and a row that is not valid
    CSV, become problems (the latter ends the file); progress is reported every 10,000 rows.
    """
    row = 0
    start_line = reader.line_num + 1
    try:
        for cells in reader:
            row += 1
            line = start_line
            start_line = reader.line_num + 1
            if progress is not None and row % 10_000 == 0:
                progress(reader.line_num, lines_total)
            if not (cells and (cells[0].strip() or "".join(cells).strip())):
                continue  # a blank row: no cell holds anything but space
            if len(cells) > width and any(c.strip() for c in cells[width:]):
                message = f"has {len(cells)} cells but the header has {width} columns"
                problems.append(FileProblem(row, line, None, message))
                continue
            yield row, line, cells
    except csv.Error as exc:
        problems.append(FileProblem(row + 1, reader.line_num, None, f"cannot be read as CSV: {exc}"))
    if progress is not None:
        progress(lines_total, lines_total)


def _sniff_delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def detect_layout(headers: list[str]) -> Layout | None:
    """The layout whose column names cover most of the header (None without a name column).

    HubSpot's and Salesforce's own names ("Record ID", "NumberOfEmployees", "BillingCountry")
    decide quickly. On a tie the canonical layout wins when the header is all lower case (as
    canonical files are written); otherwise the CRM's does ("Id, Name, Website" is Salesforce).
    """
    folded = [h.strip().lower() for h in headers]
    scores: dict[Layout, int] = {}
    for layout in ("hubspot", "salesforce", "canonical"):
        mapping = _LAYOUTS[layout]
        targets = {mapping[h] for h in folded if h in mapping}
        if "name" in targets:
            scores[layout] = len(targets)
    if not scores:
        return None
    top = max(scores.values())
    lower_case = all(h.strip() == h.strip().lower() for h in headers)
    if scores.get("canonical") == top and lower_case:
        return "canonical"
    return next(layout for layout, score in scores.items() if score == top)


def clean_cell(value: str) -> str:
    """A cell without control characters or surrounding space."""
    return _CONTROL.sub("", value).strip()


def parse_accounts_csv(
    text: str, source: str = "accounts.csv", progress: ProgressFn | None = None
) -> ParsedAccounts:
    """Parse decoded CSV text into account records, or raise AccountsFileError.

    Numbers accept CRM and spreadsheet spellings ("1,200", "$25M"); empty cells are unknown.
    A row without a name, an unreadable number or an over-long value is an error; an unusable
    website is a warning (the account is kept without a domain).
    """
    lines_total = text.count("\n") + 1
    reader, headers = read_csv_header(text, source)

    layout = detect_layout(headers)
    if layout is None:
        shown = ", ".join(h for h in headers[:12] if h) or "none"
        raise AccountsFileError(
            source,
            [FileProblem(None, 1, None, f"no name column: expected {_NAME_HEADERS}; found: {shown}")],
        )

    targets, columns = _map_headers(headers, layout, source)
    converters = _converters(headers, targets)
    findings = _Findings()
    records: list[AccountRecord] = []
    problems = findings.problems
    for row, line, cells in csv_rows(reader, len(headers), problems, progress, lines_total):
        record = _record(row, line, cells, converters, findings)
        if record is not None:
            records.append(record)
    if problems:
        raise AccountsFileError(source, problems)
    if not records:
        raise AccountsFileError(source, [FileProblem(None, None, None, "has a header but no account rows")])
    return ParsedAccounts(layout=layout, records=records, columns=columns, warnings=findings.warnings)


@dataclass
class _Findings:
    problems: list[FileProblem] = field(default_factory=list)
    warnings: list[FileProblem] = field(default_factory=list)


def _map_headers(headers: list[str], layout: Layout, source: str) -> tuple[list[str], dict[str, str]]:
    """Each column's target: a canonical field, or "extra:<snake_case name>"."""
    mapping = _LAYOUTS[layout]
    targets: list[str] = []
    columns: dict[str, str] = {}
    seen: dict[str, str] = {}
    for header in headers:
        folded = header.lower()
        if folded in seen:
            raise AccountsFileError(source, [FileProblem(None, 1, header, "appears twice in the header")])
        target = mapping.get(folded)
        if target is None or target in seen.values():
            # Unknown headers, and a second column for a field already mapped, become extras.
            target = "extra:" + snake_case(header)
        seen[folded] = target
        targets.append(target)
        columns[header] = target
    if layout == "hubspot" and "type" not in targets and "lifecycle stage" in seen:
        # HubSpot keeps the customer/prospect distinction in Lifecycle Stage.
        i = [h.lower() for h in headers].index("lifecycle stage")
        targets[i] = "type"
        columns[headers[i]] = "type"
    return targets, columns


class _BadValue(ValueError):
    """A cell that makes the row unusable (the file is refused)."""


class _Unusable(ValueError):
    """A cell that is dropped with a warning (the row is kept)."""


def _to_number(value: str) -> float:
    number = parse_number(value)
    if number is None or number < 0:
        shown = value if len(value) <= 40 else value[:37] + "..."
        raise _BadValue(f"'{shown}' is not a number (write e.g. 1200, 1,200 or 1.2M)")
    return number


def _to_count(value: str) -> int:
    return round(_to_number(value))


def _to_domain(value: str) -> str:
    domain = normalize_domain(value)
    if domain is None:
        raise _Unusable(f"'{value[:60]}' is not a web address; kept without a domain")
    return domain


def _to_name(value: str) -> str:
    if len(value) > MAX_NAME_LENGTH:
        raise _BadValue(
            f"the account name is {len(value):,} characters long; at most {MAX_NAME_LENGTH} are accepted"
        )
    return value


@lru_cache(maxsize=4096)
def _to_label(value: str) -> str:
    text = humanize_enum(value)
    return text[:1].upper() + text[1:] if text.islower() else text


def _to_aliases(value: str) -> tuple[str, ...]:
    return tuple(split_list(value))


Converter = Callable[[str], object]
_CONVERTERS: dict[str, Converter] = {
    "name": _to_name,
    "employees": _to_count,
    "annual_revenue": _to_number,
    "arr": _to_number,
    "domain": _to_domain,
    "country": normalize_country,
    "industry": humanize_enum,
    "type": _to_label,
    "aliases": _to_aliases,
}


def _converters(headers: list[str], targets: list[str]) -> list[tuple[str, str, Converter | None]]:
    """(header, target, converter) per column; None converts nothing (extras and plain text)."""
    return [(h, t, _CONVERTERS.get(t)) for h, t in zip(headers, targets, strict=True)]


def _record(
    row: int,
    line: int,
    cells: list[str],
    columns: list[tuple[str, str, Converter | None]],
    findings: _Findings,
) -> AccountRecord | None:
    """One row as a record; problems and warnings go to `findings` (None when the row is bad)."""
    values: dict[str, object] = {}
    extra: dict[str, str] = {}
    failed: set[str] = set()
    for (header, target, convert), raw in zip(columns, cells, strict=False):
        value = clean_cell(raw)
        if not value:
            continue
        try:
            if len(value) > MAX_VALUE_LENGTH:
                raise _BadValue(
                    f"value is {len(value):,} characters long; at most {MAX_VALUE_LENGTH:,} are accepted"
                )
            if convert is None:
                if target.startswith("extra:"):
                    extra[target[6:]] = value
                else:
                    values[target] = value
            else:
                values[target] = convert(value)
        except _BadValue as exc:
            findings.problems.append(FileProblem(row, line, header, str(exc)))
            failed.add(target)
        except _Unusable as exc:
            findings.warnings.append(FileProblem(row, line, header, str(exc)))
            values[target] = None
    if failed:
        return None
    name = values.get("name")
    if not isinstance(name, str) or not name:
        name_header = next((h for h, t, _ in columns if t == "name"), "name")
        findings.problems.append(FileProblem(row, line, name_header, "is empty; every account needs a name"))
        return None
    return AccountRecord(row=row, line=line, extra=extra, **values)  # type: ignore[arg-type]
