"""Read CRM opportunity and deal exports into closed deals, and say what each means as an outcome.

Two layouts are recognised from the header row, without options: a Salesforce Opportunity export
(`Id, Name, Account.Name, StageName, CloseDate, Amount, Type, Loss_Reason__c, Description`, and
the report-export spellings "Opportunity ID", "Account Name", "Stage", "Close Date"...) and a
HubSpot deals export (`Record ID, Deal Name, Associated Company, Deal Stage, Close Date, Amount,
Deal Type, Closed Lost Reason, Closed Won Reason`). Other columns are ignored.

The kind follows the deal type and stage (../shared/CONTRACT.md, "Outcomes"):

    deal type                                   Closed Won           Closed Lost
    New Business, New Customer, empty           win                  loss
    Renewal                                     renewal kept (None)  renewal_loss
    Existing Business, Upsell, Expansion, ...   customer_win         renewal_loss

A renewal kept has no kind: it counts toward retention and in no win rate. Open deals are
skipped and counted; a deal closed lost as "Duplicate" or "Test" is no outcome at all.

Dates: ISO (2026-10-05, with or without a time), dotted (05.10.2026: always day.month.year, the
European form), month names (Oct 5, 2026; 5 Oct 2026), and slashed (10/05/2026). A slashed date
is month/day/year (what US-locale Salesforce and HubSpot exports write) unless the file shows
otherwise: a first number above 12 anywhere in the file makes every slashed date in it
day/month/year. A file that shows both orders is refused at the row that contradicts the first.

Pure: text in, records or an `OutcomesFileError` naming row, line and column out.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any, Literal, NamedTuple

from insights.accounts_csv import AccountsFileError, FileProblem, clean_cell, csv_rows, read_csv_header
from insights.normalize import parse_number

Layout = Literal["salesforce", "hubspot"]
Status = Literal["won", "lost", "open", "not_an_outcome"]
DealClass = Literal["new", "renewal", "existing"]
DateOrder = Literal["month_first", "day_first"]
ProgressFn = Callable[[int, int], None]

CRM_CHANNEL = "crm"  # the `channel` of every imported note; its `ts` is "sf:<Id>" or "hs:<Record ID>"
TS_PREFIX: dict[Layout, str] = {"salesforce": "sf", "hubspot": "hs"}
MAX_ID_LENGTH = 29  # a note's ts holds 32 characters, 3 of them the prefix
MAX_ACCOUNT_LENGTH = 300
MAX_NAME_LENGTH = 300
MAX_DESCRIPTION = 500  # kept in a note's details
MAX_TEXT_DESCRIPTION = 300  # quoted in a note's readable line
MAX_TAGGED = 2000  # read by the tagger
LAYOUT_LABELS: dict[Layout, str] = {
    "salesforce": "Salesforce Opportunity export",
    "hubspot": "HubSpot deals export",
}

# Folded header -> record field, per layout.
_SALESFORCE = {
    "id": "deal_id",
    "opportunity id": "deal_id",
    "opportunity.id": "deal_id",
    "opportunityid": "deal_id",
    "name": "deal_name",
    "opportunity name": "deal_name",
    "account.name": "account",
    "account name": "account",
    "account": "account",
    "stagename": "stage",
    "stage": "stage",
    "closedate": "close_date",
    "close date": "close_date",
    "amount": "amount",
    "type": "deal_type",
    "opportunity type": "deal_type",
    "loss_reason__c": "loss_reason",
    "loss reason": "loss_reason",
    "closed_lost_reason__c": "loss_reason",
    "closed lost reason": "loss_reason",
    "win_reason__c": "won_reason",
    "won_reason__c": "won_reason",
    "win reason": "won_reason",
    "description": "description",
    "currencyisocode": "currency",
    "opportunity currency": "currency",
    "currency": "currency",
    "iswon": "is_won",
    "won": "is_won",
    "isclosed": "is_closed",
    "closed": "is_closed",
}
_HUBSPOT = {
    "record id": "deal_id",
    "deal id": "deal_id",
    "hs_object_id": "deal_id",
    "deal name": "deal_name",
    "dealname": "deal_name",
    "associated company": "account",
    "associated company (primary)": "account",
    "associated company name": "account",
    "company name": "account",
    "deal stage": "stage",
    "dealstage": "stage",
    "close date": "close_date",
    "closedate": "close_date",
    "amount": "amount",
    "deal type": "deal_type",
    "dealtype": "deal_type",
    "closed lost reason": "loss_reason",
    "closed_lost_reason": "loss_reason",
    "closed won reason": "won_reason",
    "closed_won_reason": "won_reason",
    "deal description": "description",
    "description": "description",
    "currency": "currency",
    "deal currency code": "currency",
    "pipeline": "pipeline",
}
_LAYOUTS: dict[Layout, dict[str, str]] = {"salesforce": _SALESFORCE, "hubspot": _HUBSPOT}
REQUIRED = ("deal_id", "stage", "close_date", "account")
_HEADER_NAMES: dict[Layout, dict[str, str]] = {
    "salesforce": {
        "deal_id": "Id",
        "stage": "StageName",
        "close_date": "CloseDate",
        "account": "Account.Name",
    },
    "hubspot": {
        "deal_id": "Record ID",
        "stage": "Deal Stage",
        "close_date": "Close Date",
        "account": "Associated Company",
    },
}
_ACCOUNT_EXPORT_HEADERS = {"website", "numberofemployees", "company domain name", "number of employees"}

# CRM picklist values the tagger reads wrongly or not at all. CRM picklists are a fixed vocabulary,
# so these few are named outright; every other loss reason, and every description, goes to the
# workspace's tagger (the one Slack messages go through). Keys are folded (see `_fold`).
PICKLIST_REASONS: dict[str, tuple[str, ...]] = {
    "no decision non responsive": ("no_decision",),  # the tagger drops no_decision near "renewal"
    "no decision": ("no_decision",),
    "lack of adoption": ("adoption",),  # the tagger adds product_gap for "lack"
    "low adoption": ("adoption",),
    "poor adoption": ("adoption",),
    "lost champion": ("champion_loss",),
    "loss of champion": ("champion_loss",),
    "champion change": ("champion_loss",),
    "no need": ("poor_fit",),
    "no longer needed": ("poor_fit",),
    "not needed": ("poor_fit",),
    "product": ("product_gap",),
    "product issues": ("product_gap",),
}
# Loss reasons that say the record was never a deal: no outcome, skipped (and any earlier
# imported note of the deal retracted).
NOT_AN_OUTCOME = frozenset(
    {
        "duplicate",
        "duplicate opportunity",
        "duplicate deal",
        "dupe",
        "test",
        "test record",
        "test deal",
        "test opportunity",
        "created in error",
        "entered in error",
        "data cleanup",
        "data clean up",
    }
)
_WON_STAGES = frozenset({"closedwon", "won"})
_LOST_STAGES = frozenset({"closedlost", "lost"})
_EXISTING_WORDS = (
    "existing",
    "upsell",
    "up sell",
    "upgrade",
    "downgrade",
    "expansion",
    "expand",
    "cross sell",
    "crosssell",
    "add on",
    "addon",
    "replacement",
)
_NEW_WORDS = ("new", "win back", "winback")


class OutcomesFileError(AccountsFileError):
    """The deals file cannot be imported; `str()` names the first problem (row, line, column)."""


class DealRecord(NamedTuple):
    """One opportunity or deal as the CRM file describes it (a tuple: a million build quickly)."""

    row: int
    line: int
    deal_id: str
    status: Status
    stage: str  # as written
    close_date: date | None = None  # set for won and lost deals
    deal_name: str | None = None
    account: str | None = None
    amount: float | None = None
    currency: str = "USD"
    deal_type: str | None = None  # as written
    deal_class: DealClass = "new"
    loss_reason: str | None = None
    won_reason: str | None = None
    description: str | None = None
    pipeline: str | None = None

    @property
    def closed(self) -> bool:
        return self.status in ("won", "lost")


@dataclass(frozen=True)
class ParsedOutcomes:
    layout: Layout
    records: list[DealRecord]  # one per deal id (a repeated id: the later row), in file order
    rows: int  # data rows read (blank lines excluded)
    repeated_in_file: int
    open_stages: dict[str, int]  # stage as written -> open deals in it
    date_order: DateOrder | None  # how slashed dates were read (None: the file has none)
    warnings: list[FileProblem]

    def ts(self, record: DealRecord) -> str:
        return f"{TS_PREFIX[self.layout]}:{record.deal_id}"


@dataclass(frozen=True)
class Outcome:
    """What a closed deal means: its kind, or a renewal kept (kind None)."""

    kind: str | None
    renewal_kept: bool = False


# ---------------------------------------------------------------------------------------------
# Reading the file


def _fold(value: str) -> str:
    """Lower case, every run of non-alphanumerics one space: "No Decision / Non-Responsive" ->
    "no decision non responsive"."""
    return " ".join(re.sub(r"[^0-9a-z]+", " ", value.casefold()).split())


def detect_layout(headers: list[str]) -> Layout | None:
    """The layout whose columns cover most of the header; it must have a deal id and a stage."""
    folded = [h.strip().lower() for h in headers]
    scores: dict[Layout, int] = {}
    for layout in ("hubspot", "salesforce"):
        mapping = _LAYOUTS[layout]
        targets = {mapping[h] for h in folded if h in mapping}
        if {"deal_id", "stage"} <= targets:
            scores[layout] = len(targets)
    if not scores:
        return None
    return max(scores, key=lambda layout: scores[layout])


def _not_a_deals_file(source: str, headers: list[str]) -> OutcomesFileError:
    shown = ", ".join(h for h in headers[:12] if h) or "none"
    hint = ""
    if {h.strip().lower() for h in headers} & _ACCOUNT_EXPORT_HEADERS:
        hint = " (this looks like an accounts export: import it with 'icp-bot accounts import')"
    return OutcomesFileError(
        source,
        [
            FileProblem(
                None,
                1,
                None,
                "is not an opportunity or deal export: expected 'Id' and 'StageName' (Salesforce "
                f"Opportunity) or 'Record ID' and 'Deal Stage' (HubSpot deals); found: {shown}{hint}",
            )
        ],
    )


def _map_headers(headers: list[str], layout: Layout, source: str) -> list[str | None]:
    """Each column's field (None: ignored); refuses a file without a required column."""
    mapping = _LAYOUTS[layout]
    fields: list[str | None] = []
    seen: set[str] = set()
    for header in headers:
        target = mapping.get(header.strip().lower())
        if target is not None and target in seen:
            target = None  # a second column for a field already mapped is ignored
        if target is not None:
            seen.add(target)
        fields.append(target)
    missing = [f for f in REQUIRED if f not in seen]
    if missing:
        names = _HEADER_NAMES[layout]
        wanted = ", ".join(f"'{names[f]}'" for f in missing)
        raise OutcomesFileError(
            source,
            [
                FileProblem(
                    None,
                    1,
                    names[missing[0]],
                    f"is missing: a {LAYOUT_LABELS[layout]} needs {wanted}; add "
                    f"{'it' if len(missing) == 1 else 'them'} to the export",
                )
            ],
        )
    return fields


@dataclass(slots=True)
class _Raw:
    row: int
    line: int
    values: dict[str, str]


@dataclass
class _Findings:
    problems: list[FileProblem] = field(default_factory=list)
    warnings: list[FileProblem] = field(default_factory=list)


def parse_outcomes_csv(
    text: str, source: str = "deals.csv", progress: ProgressFn | None = None
) -> ParsedOutcomes:
    """Parse decoded CSV text into deal records, or raise OutcomesFileError.

    Every problem of the file is collected before raising (the first is named in the message);
    a closed deal needs its id, a stage and a readable close date, and a readable amount if any.
    """
    reader, headers = read_csv_header(text, source, OutcomesFileError)
    layout = detect_layout(headers)
    if layout is None:
        raise _not_a_deals_file(source, headers)
    fields = _map_headers(headers, layout, source)
    names = {f: h for h, f in zip(headers, fields, strict=True) if f is not None}

    findings = _Findings()
    raws = _read_rows(
        reader, len(headers), fields, findings, progress=progress, lines_total=text.count("\n") + 1
    )
    statuses = _statuses(raws)
    closed = [r for r, s in zip(raws, statuses, strict=True) if s in ("won", "lost")]
    date_order = _date_order(closed, names, findings)
    records, repeated = _records(raws, statuses, names, date_order or "month_first", findings)
    if findings.problems:
        findings.problems.sort(key=lambda p: (p.row or 0, p.line or 0))
        raise OutcomesFileError(source, findings.problems)
    if not raws:
        raise OutcomesFileError(source, [FileProblem(None, None, None, "has a header but no deal rows")])
    open_stages = Counter(r.stage for r in records if r.status == "open")
    return ParsedOutcomes(
        layout=layout,
        records=records,
        rows=len(raws),
        repeated_in_file=repeated,
        open_stages=dict(open_stages.most_common()),
        date_order=date_order,
        warnings=findings.warnings,
    )


def _read_rows(
    reader: Any,
    width: int,
    fields: list[str | None],
    findings: _Findings,
    *,
    progress: ProgressFn | None,
    lines_total: int,
) -> list[_Raw]:
    """The non-blank rows, each as its mapped, cleaned, non-empty cells."""
    raws: list[_Raw] = []
    for row, line, cells in csv_rows(reader, width, findings.problems, progress, lines_total):
        values: dict[str, str] = {}
        for f, cell in zip(fields, cells, strict=False):
            # A printable cell holds no control character: clean_cell would only strip it.
            if f is not None and cell and (value := cell.strip() if cell.isprintable() else clean_cell(cell)):
                values[f] = value
        raws.append(_Raw(row, line, values))
    return raws


def _records(
    raws: list[_Raw], statuses: list[Status], names: dict[str, str], order: DateOrder, findings: _Findings
) -> tuple[list[DealRecord], int]:
    """One record per deal id (a repeated id keeps the later row), and how many rows repeated one."""
    records: dict[str, DealRecord] = {}
    first_row: dict[str, int] = {}
    repeated = 0
    unknown_types: dict[str, list[int]] = {}
    memo = _Memo(order)
    for raw, status in zip(raws, statuses, strict=True):
        record = _record(raw, status, names=names, memo=memo, findings=findings, unknown_types=unknown_types)
        if record is None:
            continue
        earlier = records.get(record.deal_id)
        if earlier is not None:
            repeated += 1
            first = first_row.setdefault(record.deal_id, earlier.row)  # the deal's first row
            message = f"repeats deal {record.deal_id} of row {first}; the later row is kept"
            findings.warnings.append(FileProblem(raw.row, raw.line, names["deal_id"], message))
            del records[record.deal_id]  # re-inserted below: file order follows the kept row
        records[record.deal_id] = record
    for value, rows in unknown_types.items():
        findings.warnings.append(
            FileProblem(
                rows[0],
                None,
                names.get("deal_type"),
                f"deal type '{value}' ({len(rows)} row{'s' if len(rows) > 1 else ''}) is none of New "
                "Business, Renewal, Existing Business, Upsell or Expansion; read as new business",
            )
        )
    return list(records.values()), repeated


def _flag(value: str | None) -> bool | None:
    folded = (value or "").strip().lower()
    if folded in ("true", "1", "yes", "y"):
        return True
    if folded in ("false", "0", "no", "n"):
        return False
    return None


def stage_status(stage: str, is_won: bool | None = None, is_closed: bool | None = None) -> Status:
    """Won, lost or open, from the stage ("Closed Won", "closedlost", "Closed won (Renewals)").

    Salesforce's IsClosed/IsWon columns, when the export has them, decide custom stage names.
    """
    key = re.sub(r"[^0-9a-z]+", "", re.sub(r"\(.*?\)", "", stage.casefold()))
    if key in _WON_STAGES:
        return "won"
    if key in _LOST_STAGES:
        return "lost"
    if is_closed:
        return "won" if is_won else "lost"
    return "open"


def _status(values: dict[str, str]) -> Status:
    stage = values.get("stage", "")
    status = stage_status(stage, _flag(values.get("is_won")), _flag(values.get("is_closed")))
    if status == "lost" and _fold(values.get("loss_reason", "")) in NOT_AN_OUTCOME:
        return "not_an_outcome"
    return status


def _statuses(raws: list[_Raw]) -> list[Status]:
    """Each row's status; a file repeats a few stages and reasons, so each is read once."""
    known: dict[tuple[str | None, ...], Status] = {}
    out: list[Status] = []
    for raw in raws:
        values = raw.values
        key = (values.get("stage"), values.get("is_won"), values.get("is_closed"), values.get("loss_reason"))
        status = known.get(key)
        if status is None:
            status = known[key] = _status(values)
        out.append(status)
    return out


def deal_class(deal_type: str | None) -> DealClass | None:
    """New business, a renewal, or existing business (upsell, expansion); None when unknown."""
    folded = _fold(deal_type or "")
    if not folded:
        return "new"
    if "renew" in folded:
        return "renewal"
    if any(word in folded for word in _EXISTING_WORDS):
        return "existing"
    if any(re.search(rf"\b{word}\b", folded) for word in _NEW_WORDS) or folded == "newbusiness":
        return "new"
    return None


# --- dates ------------------------------------------------------------------------------------

_ISO = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[T ].*)?$")
_DOTTED = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4}|\d{2})\.?(?:[T ].*)?$")
_SLASHED = re.compile(r"^(\d{1,2})[/-](\d{1,2})[/-](\d{4}|\d{2})(?:[T ,].*)?$")
_NAMED_FORMATS = ("%b %d %Y", "%B %d %Y", "%d %b %Y", "%d %B %Y")
_DATE_EXAMPLES = "write e.g. 2026-10-05, 10/05/2026 or 05.10.2026"


class _BadValue(ValueError):
    """A cell that makes the row unusable (the file is refused)."""


def _year(text: str) -> int:
    year = int(text)
    return 2000 + year if len(text) == 2 else year


def _make_date(year: int, month: int, day: int, value: str) -> date:
    try:
        result = date(year, month, day)
    except ValueError:
        raise _BadValue(f"'{value}' is not a date on the calendar ({_DATE_EXAMPLES})") from None
    if not 1990 <= result.year <= 2100:
        raise _BadValue(f"'{value}' is not a plausible close date (year {result.year})")
    return result


def parse_date(value: str, order: DateOrder = "month_first") -> date:
    """A CRM's spelling of a date; `order` says how a slashed date (10/05/2026) is read."""
    text = value.strip()
    if m := _ISO.match(text):
        return _make_date(int(m[1]), int(m[2]), int(m[3]), value)
    if m := _DOTTED.match(text):
        return _make_date(_year(m[3]), int(m[2]), int(m[1]), value)
    if m := _SLASHED.match(text):
        first, second = int(m[1]), int(m[2])
        month, day = (first, second) if order == "month_first" else (second, first)
        return _make_date(_year(m[3]), month, day, value)
    words = " ".join(text.replace(",", " ").replace("-", " ").split())
    for fmt in _NAMED_FORMATS:
        try:
            parsed = datetime.strptime(words, fmt)
        except ValueError:
            continue
        return _make_date(parsed.year, parsed.month, parsed.day, value)
    shown = value if len(value) <= 40 else value[:37] + "..."
    raise _BadValue(f"'{shown}' is not a date ({_DATE_EXAMPLES})")


def _date_order(raws: list[_Raw], names: dict[str, str], findings: _Findings) -> DateOrder | None:
    """How the file's slashed dates read: the order its unambiguous dates show (month first by
    default, with a warning when every one is ambiguous)."""
    day_first: _Raw | None = None
    month_first: _Raw | None = None
    slashed = 0
    for raw in raws:
        m = _SLASHED.match(raw.values.get("close_date", ""))
        if not m:
            continue
        slashed += 1
        if int(m[1]) > 12 and day_first is None:
            day_first = raw
        elif int(m[2]) > 12 and month_first is None:
            month_first = raw
    if not slashed:
        return None
    if day_first is not None and month_first is not None:
        later, earlier = sorted((day_first, month_first), key=lambda r: r.row, reverse=True)
        findings.problems.append(
            FileProblem(
                later.row,
                later.line,
                names["close_date"],
                f"'{later.values['close_date']}' is {'day/month' if later is day_first else 'month/day'} "
                f"but row {earlier.row} ('{earlier.values['close_date']}') is "
                f"{'day/month' if earlier is day_first else 'month/day'}; the file mixes date orders. "
                "Re-export with one date format (ISO 2026-10-05 is never ambiguous)",
            )
        )
        return "month_first"
    if day_first is not None:
        return "day_first"
    if month_first is None:
        findings.warnings.append(
            FileProblem(
                None,
                None,
                names["close_date"],
                f"all {slashed:,} slashed dates could be month/day or day/month; read as month/day "
                "(US). If they are day/month, re-export with ISO dates (2026-10-05)",
            )
        )
    return "month_first"


# --- one row ----------------------------------------------------------------------------------

_CURRENCY_SIGNS = (("€", "EUR"), ("£", "GBP"), ("EUR", "EUR"), ("GBP", "GBP"), ("CAD", "CAD"), ("AUD", "AUD"))


def _amount(value: str) -> float:
    number = parse_number(value)
    if number is None or number < 0:
        shown = value if len(value) <= 40 else value[:37] + "..."
        raise _BadValue(f"'{shown}' is not an amount (write e.g. 12500, 12,500.00 or $12,500)")
    return number


def _currency(values: dict[str, str]) -> str:
    written = values.get("currency", "").strip().upper()
    if re.fullmatch(r"[A-Z]{3}", written):
        return written
    amount = values.get("amount", "").upper()
    return next((code for sign, code in _CURRENCY_SIGNS if sign in amount), "USD")


def _account(value: str | None) -> str | None:
    """The company a deal is about: HubSpot may list several ("A;B") or add an id ("A (123)")."""
    if not value:
        return None
    first = value.split(";")[0].strip()
    return re.sub(r"\s*\(\d+\)$", "", first) or None


class _Memo:
    """What the cells of one file mean, each distinct text read once: exports repeat their
    picklists, close dates, amounts and account names on thousands of rows."""

    def __init__(self, order: DateOrder) -> None:
        self.order = order
        self.dates: dict[str, date | str] = {}  # a date, or what is wrong with the text
        self.amounts: dict[str, float | str] = {}
        self.currencies: dict[tuple[str, str], str] = {}
        self.accounts: dict[str, str | None] = {}
        self.classes: dict[str | None, DealClass | None] = {}

    def date(self, value: str) -> date | str:
        found = self.dates.get(value)
        if found is None:
            try:
                found = parse_date(value, self.order)
            except _BadValue as exc:
                found = str(exc)
            self.dates[value] = found
        return found

    def amount(self, value: str) -> float | str:
        found = self.amounts.get(value)
        if found is None:
            try:
                found = _amount(value)
            except _BadValue as exc:
                found = str(exc)
            self.amounts[value] = found
        return found

    def currency(self, values: dict[str, str]) -> str:
        key = (values.get("currency", ""), values.get("amount", ""))
        found = self.currencies.get(key)
        if found is None:
            found = self.currencies[key] = _currency(values)
        return found

    def account(self, value: str | None) -> str | None:
        if value is None:
            return None
        if value not in self.accounts:
            self.accounts[value] = _account(value)
        return self.accounts[value]

    def deal_class(self, deal_type: str | None) -> DealClass | None:
        if deal_type not in self.classes:
            self.classes[deal_type] = deal_class(deal_type)
        return self.classes[deal_type]


def _record(
    raw: _Raw,
    status: Status,
    *,
    names: dict[str, str],
    memo: _Memo,
    findings: _Findings,
    unknown_types: dict[str, list[int]],
) -> DealRecord | None:
    values = raw.values
    deal_id = values.get("deal_id", "")
    stage = values.get("stage", "")
    bad: list[FileProblem] = []

    def problem(f: str, message: str) -> None:
        bad.append(FileProblem(raw.row, raw.line, names.get(f, f), message))

    if not deal_id:
        problem("deal_id", "is empty; every deal needs its CRM id")
    elif len(deal_id) > MAX_ID_LENGTH:
        problem("deal_id", f"'{deal_id[:40]}' is not a CRM id (at most {MAX_ID_LENGTH} characters)")
    if not stage:
        problem("stage", "is empty; every deal needs a stage")
    if bad or status in ("open", "not_an_outcome"):
        findings.problems.extend(bad)
        return None if bad else DealRecord(raw.row, raw.line, deal_id, status, stage)

    written_date = values.get("close_date")
    close_date = memo.date(written_date) if written_date is not None else None
    if written_date is None:
        problem("close_date", "is empty; a closed deal needs its close date")
    elif isinstance(close_date, str):
        problem("close_date", close_date)
    written_amount = values.get("amount")
    amount = memo.amount(written_amount) if written_amount is not None else None
    if isinstance(amount, str):
        problem("amount", amount)
    account = memo.account(values.get("account"))
    if account is not None and len(account) > MAX_ACCOUNT_LENGTH:
        problem("account", f"the account name is {len(account):,} characters long; at most 300 are accepted")
    if account is None:
        findings.warnings.append(
            FileProblem(
                raw.row, raw.line, names["account"], "is empty; the outcome is kept without an account"
            )
        )
    deal_type = values.get("deal_type")
    kind_of_deal = memo.deal_class(deal_type)
    if kind_of_deal is None:
        unknown_types.setdefault(deal_type or "", []).append(raw.row)
        kind_of_deal = "new"
    if bad or not isinstance(close_date, date) or isinstance(amount, str):
        findings.problems.extend(bad)
        return None
    deal_name = values.get("deal_name")
    if deal_name is not None and len(deal_name) > MAX_NAME_LENGTH:
        deal_name = _shorten(deal_name, MAX_NAME_LENGTH)
    return DealRecord(
        raw.row,
        raw.line,
        deal_id,
        status,
        stage,
        close_date,
        deal_name,
        account,
        amount,
        memo.currency(values),
        deal_type,
        kind_of_deal,
        values.get("loss_reason"),
        values.get("won_reason"),
        values.get("description"),
        values.get("pipeline"),
    )


def _shorten(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


# ---------------------------------------------------------------------------------------------
# What a closed deal means


def outcome_of(record: DealRecord) -> Outcome:
    """The contract's mapping of deal type and stage to an outcome kind."""
    return _OUTCOMES[record.status == "won", record.deal_class]


_OUTCOMES: dict[tuple[bool, DealClass], Outcome] = {
    (True, "new"): Outcome("win"),
    (False, "new"): Outcome("loss"),
    (True, "renewal"): Outcome(None, renewal_kept=True),
    (False, "renewal"): Outcome("renewal_loss"),
    (True, "existing"): Outcome("customer_win"),
    (False, "existing"): Outcome("renewal_loss"),
}


def picklist_reasons(loss_reason: str | None) -> tuple[str, ...] | None:
    """The reason codes of a known CRM picklist value; None for any other text."""
    return PICKLIST_REASONS.get(_fold(loss_reason or "")) if loss_reason else None


def tagging_text(record: DealRecord) -> tuple[str | None, tuple[str, ...]]:
    """What the tagger reads for a closed deal (None: nothing to read), and the reason codes a
    known picklist value gives outright.

    The tagger sees a CRM template line ("Outcome: Lost.") so that it reads the reason and
    description as an outcome's, never the deal or account name.
    """
    lost = record.status == "lost"
    codes = picklist_reasons(record.loss_reason) if lost else None
    parts: list[str] = []
    if lost and record.loss_reason and codes is None:
        parts.append(f"Loss reason: {record.loss_reason}.")
    if not lost and record.won_reason:
        parts.append(f"Won reason: {record.won_reason}.")
    if record.description:
        parts.append(record.description[:MAX_TAGGED])
    if not parts:
        return None, codes or ()
    return " ".join(["Outcome: Lost." if lost else "Outcome: Won.", *parts]), codes or ()


def note_text(record: DealRecord) -> str:
    """The readable line of an imported outcome: "Closed Lost: Acme – Platform — Loss reason: Price — ..."."""
    won = record.status == "won"
    parts = [
        f"{'Closed Won' if won else 'Closed Lost'}: {record.deal_name or record.account or record.deal_id}"
    ]
    if record.deal_type and record.deal_class != "new":
        parts.append(record.deal_type)
    if not won and record.loss_reason:
        parts.append(f"Loss reason: {record.loss_reason}")
    if won and record.won_reason:
        parts.append(f"Won reason: {record.won_reason}")
    if record.description:
        parts.append(_quoted(record.description))
    return " — ".join(parts)


@lru_cache(maxsize=4096)  # descriptions repeat ("Lost to a cheaper tool") across many deals
def _quoted(description: str) -> str:
    return _shorten(" ".join(description.split()), MAX_TEXT_DESCRIPTION) or ""


def note_details(record: DealRecord, layout: Layout) -> dict[str, Any]:
    """What the CRM row said, kept on the note (the stage and type as written)."""
    details: dict[str, Any] = {
        "stage": record.stage,
        "deal_type": record.deal_type,
        "deal_name": record.deal_name,
        "loss_reason": record.loss_reason,
        "description": _shorten(record.description, MAX_DESCRIPTION),
        "layout": layout,
    }
    if record.won_reason:
        details["won_reason"] = record.won_reason
    if record.pipeline:
        details["pipeline"] = record.pipeline
    if outcome_of(record).renewal_kept:
        details["renewal"] = "kept"
    return details


def posted_at(record: DealRecord) -> datetime:
    """An imported outcome happened on its close date, at noon UTC (the same day everywhere)."""
    assert record.close_date is not None
    return datetime(record.close_date.year, record.close_date.month, record.close_date.day, 12, tzinfo=UTC)


def amount_of(record: DealRecord) -> dict[str, Any] | None:
    if record.amount is None:
        return None
    return {"value": record.amount, "currency": record.currency, "unit": None}


def merge_reasons(first: Iterable[str], then: Iterable[str]) -> list[str]:
    return list(dict.fromkeys([*first, *then]))
