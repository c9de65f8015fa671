"""Use case: import closed deals from a CRM export (Salesforce, HubSpot) as outcome notes.

Each closed deal becomes one note in the pseudo-channel "crm" with ts "sf:<Id>" or "hs:<Record
ID>", so importing a file again finds the notes it wrote: an unchanged row changes nothing, a
row the CRM changed (stage, amount, reason) updates its note in place, and a note a person has
corrected is left as they made it. Slack-captured notes live in their own channels and are
never touched; the digest, not the import, counts a deal captured in Slack and imported from the
CRM once.

The whole file is read and validated before anything is written, and everything is written in
one transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from insights.accounts_csv import FileProblem, decode_csv_bytes
from insights.config import ICPDefinition, Taxonomy
from insights.errors import AccountNotFoundError, NoAccountsError
from insights.normalize import fold
from insights.outcomes_csv import (
    CRM_CHANNEL,
    DealRecord,
    ParsedOutcomes,
    amount_of,
    merge_reasons,
    note_details,
    note_text,
    outcome_of,
    parse_outcomes_csv,
    posted_at,
    tagging_text,
)
from insights.scoring import score_account
from insights.service import (
    OUTCOME_KINDS,
    ImportProgress,
    SessionFactory,
    account_fields,
    build_tagger,
    resolve_account,
)
from insights.tagging import Tagger
from storage.models import Note, utcnow
from storage.repositories import (
    NOTES_TABLE,
    AccountRepository,
    ImportRunRepository,
    WorkspaceRepository,
)

_BATCH = 5000
UNKNOWN_ACCOUNTS_SHOWN = 5
# The note columns an import decides; a re-import compares them to find what the CRM changed.
_COMPARED = (
    "text",
    "kind",
    "account",
    "account_id",
    "competitor",
    "reasons",
    "amount",
    "posted_at",
    "details",
    "crm_id",
    "status",
    "retracted_reason",
)


@dataclass(frozen=True)
class OutcomesImportSummary:
    """What an outcomes import read and what it changed."""

    source: str
    layout: str  # salesforce | hubspot
    rows: int  # data rows in the file
    closed: int  # closed deals (won or lost), each one outcome or renewal kept
    created: int
    updated: int
    unchanged: int
    kept_corrected: int  # closed deals whose note a person corrected: left as they made it
    skipped_open: int  # open deals: no outcome yet
    skipped_not_outcome: int  # closed lost as "Duplicate", "Test" ...: never a deal
    retracted: int  # earlier imported notes whose deal is open again (or was never a deal)
    repeated_in_file: int  # rows that repeated a deal id of an earlier row (the later one is kept)
    by_kind: dict[str, int]  # closed deals in the file by outcome kind
    renewals_kept: int  # renewals closed won: retention, in no win rate
    accounts_matched: int  # closed deals whose account is one of the workspace's accounts
    accounts_not_found: int  # distinct account names with no account (kept as written)
    unknown_accounts: tuple[str, ...]  # the first few of them
    open_stages: dict[str, int]  # stage as written -> open deals skipped in it
    date_order: str | None  # how slashed dates were read: month_first | day_first (None: none)
    warnings: tuple[FileProblem, ...]


def import_outcomes(
    session_factory: SessionFactory,
    team_id: str,
    data: bytes,
    source: str,
    *,
    icp: ICPDefinition,
    taxonomy: Taxonomy,
    tagger: Tagger | None = None,
    encoding: str | None = None,
    progress: ImportProgress | None = None,
) -> OutcomesImportSummary:
    """Import a Salesforce Opportunity or HubSpot deals export as outcome notes.

    Loss reasons and descriptions are read by the workspace's tagger (built here unless a warm
    one is passed). progress(phase, done, total): "read" counts file lines, "write" deals saved.
    Raises OutcomesFileError (an AccountsFileError) for a bad file, before anything is written.
    """
    read_progress = (lambda done, total: progress("read", done, total)) if progress else None
    parsed = parse_outcomes_csv(decode_csv_bytes(data, source, encoding), source, read_progress)
    if tagger is None:
        tagger = build_tagger(session_factory, team_id, taxonomy)
    labels = _Labels(tagger)
    tally = _Tally()
    with session_factory.begin() as session:
        WorkspaceRepository(session).get_or_create(team_id)
        accounts = _Accounts(session, team_id, icp)
        total = len(parsed.records)
        importer = _Importer(session, team_id, parsed, labels, accounts, tally)
        for start in range(0, total, _BATCH):
            batch = parsed.records[start : start + _BATCH]
            importer.batch(batch)
            if progress is not None:
                progress("write", start + len(batch), total)
        ImportRunRepository(session, team_id).record(
            kind="outcomes",
            source_name=source,
            layout=parsed.layout,
            rows=parsed.rows,
            created=tally.created,
            updated=tally.updated,
            unchanged=tally.unchanged,
        )
    unknown = list(accounts.unknown)
    return OutcomesImportSummary(
        source=source,
        layout=parsed.layout,
        rows=parsed.rows,
        closed=sum(1 for r in parsed.records if r.closed),
        created=tally.created,
        updated=tally.updated,
        unchanged=tally.unchanged,
        kept_corrected=tally.kept_corrected,
        skipped_open=sum(1 for r in parsed.records if r.status == "open"),
        skipped_not_outcome=sum(1 for r in parsed.records if r.status == "not_an_outcome"),
        retracted=tally.retracted,
        repeated_in_file=parsed.repeated_in_file,
        by_kind={k: tally.kinds[k] for k in OUTCOME_KINDS if tally.kinds[k]},
        renewals_kept=tally.renewals_kept,
        accounts_matched=tally.matched,
        accounts_not_found=len(unknown),
        unknown_accounts=tuple(unknown[:UNKNOWN_ACCOUNTS_SHOWN]),
        open_stages=parsed.open_stages,
        date_order=parsed.date_order,
        warnings=tuple(parsed.warnings),
    )


@dataclass
class _Tally:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    kept_corrected: int = 0
    retracted: int = 0
    renewals_kept: int = 0
    matched: int = 0

    def __post_init__(self) -> None:
        self.kinds: Counter[str] = Counter()


class _Labels:
    """Reason codes (lost deals) and competitor of a closed deal, read by the workspace's tagger.

    CRM picklists repeat ("Price" on thousands of rows): each distinct text is tagged once.
    """

    def __init__(self, tagger: Tagger) -> None:
        self.tagger = tagger
        self.cache: dict[str, tuple[tuple[str, ...], str | None]] = {}

    def of(self, record: DealRecord) -> tuple[list[str], str | None]:
        text, codes = tagging_text(record)
        if text is None:
            return list(codes), None
        found = self.cache.get(text)
        if found is None:
            tag = self.tagger.tag(text)
            found = self.cache[text] = (tag.reasons, tag.competitor)
        # Reason codes say why deals are lost and customers leave; a won deal keeps its won
        # reason as written (text and details) and only its rival is read.
        return (merge_reasons(codes, found[0]) if record.status == "lost" else []), found[1]


class _Accounts:
    """Account names resolved the way a person's correction is: exact name, domain or alias,
    else a confident fuzzy match; a name with no account is kept as written, without a tier."""

    def __init__(self, session: Session, team_id: str, icp: ICPDefinition) -> None:
        self.repo = AccountRepository(session, team_id)
        self.icp = icp
        self.resolved: dict[str, tuple[str, int | None, str | None]] = {}
        self.unknown: dict[str, None] = {}  # insertion-ordered set of names as written
        self._keys: dict[int, str] | None = None

    def resolve(self, name: str | None) -> tuple[str | None, int | None, str | None]:
        """(name, account id, tier now) of the account a deal names."""
        if name is None:
            return None, None, None
        key = fold(name)
        found = self.resolved.get(key)
        if found is None:
            if self._keys is None:
                self._keys = self.repo.name_keys()  # fuzzy matching ranks these, loaded once
            try:
                account, _ = resolve_account(self.repo, name, self._keys)
                tier = score_account(account_fields(account), self.icp).tier
                found = (account.name, account.id, tier)
            except (AccountNotFoundError, NoAccountsError):
                found = (name, None, None)
            self.resolved[key] = found
        if found[1] is None:
            self.unknown.setdefault(found[0])
        return found


@dataclass
class _Importer:
    """Writes one file's deals, batch by batch, inside the caller's transaction."""

    session: Session
    team_id: str
    parsed: ParsedOutcomes
    labels: _Labels
    accounts: _Accounts
    tally: _Tally

    def batch(self, batch: Sequence[DealRecord]) -> None:
        existing = _crm_notes(self.session, self.team_id, [self.parsed.ts(r) for r in batch])
        inserts: list[dict[str, Any]] = []
        now = utcnow()
        for record in batch:
            note = existing.get(self.parsed.ts(record))
            protected = note is not None and (note.corrected_by is not None or note.source != "import")
            if not record.closed:
                if note is not None and not protected and note.status == "active":
                    self._retract(note, record, now)
                continue
            new = self._deal(record, note, protected, now)
            if new is not None:
                inserts.append(new)
        _insert_notes(self.session, self.team_id, inserts)
        self.session.flush()
        self.session.expunge_all()  # a million-deal file never holds every note in memory at once

    def _retract(self, note: Note, record: DealRecord, now: datetime) -> None:
        """A deal open again (or closed as a duplicate) is no outcome now: its earlier note goes."""
        note.status = "retracted"
        note.retracted_reason = "reopened" if record.status == "open" else "not_an_outcome"
        note.updated_at = now
        self.tally.retracted += 1

    def _deal(
        self, record: DealRecord, note: Note | None, protected: bool, now: datetime
    ) -> dict[str, Any] | None:
        """A closed deal: the row of a new note, or None once its existing note is up to date."""
        tally = self.tally
        outcome = outcome_of(record)
        if outcome.kind is not None:
            tally.kinds[outcome.kind] += 1
        tally.renewals_kept += outcome.renewal_kept
        name, account_id, tier = self.accounts.resolve(record.account)
        tally.matched += account_id is not None
        if protected:
            tally.kept_corrected += 1
            return None
        reasons, competitor = self.labels.of(record)
        values: dict[str, Any] = {
            "text": note_text(record),
            "kind": outcome.kind,
            "account": name,
            "account_id": account_id,
            "competitor": competitor,
            "reasons": reasons,
            "amount": amount_of(record),
            "posted_at": posted_at(record),
            "details": note_details(record, self.parsed.layout),
            "crm_id": record.deal_id,
            "status": "active",
            "retracted_reason": None,
        }
        if note is None:
            tally.created += 1
            return {
                **values,
                "channel": CRM_CHANNEL,
                "ts": self.parsed.ts(record),
                "user_id": None,
                "tier": tier,
                "confidence": 1.0,
                "source": "import",
            }
        changes = {k: v for k, v in values.items() if not _same(k, getattr(note, k), v)}
        if not changes:
            tally.unchanged += 1
            return None
        # The tier is the account's when the outcome was first recorded; a new account sets it anew.
        if "account_id" in changes or (note.tier is None and account_id is not None):
            changes["tier"] = tier
        for key, value in changes.items():
            setattr(note, key, value)
        note.updated_at = now
        tally.updated += 1
        return None


def _same(key: str, old: Any, new: Any) -> bool:
    if key == "posted_at" and isinstance(old, datetime):
        return bool((old if old.tzinfo else old.replace(tzinfo=UTC)) == new)
    if key == "reasons":
        return list(old or []) == list(new)
    return bool(old == new)


def _crm_notes(session: Session, team_id: str, ts: list[str]) -> dict[str, Note]:
    """The imported notes of these CRM deals, by ts (one indexed lookup per batch)."""
    query = select(Note).where(Note.team_id == team_id, Note.channel == CRM_CHANNEL, Note.ts.in_(ts))
    return {note.ts: note for note in session.scalars(query)}


def _insert_notes(session: Session, team_id: str, rows: list[dict[str, Any]]) -> None:
    """Insert new notes in one statement per batch; a note a concurrent import wrote first stays."""
    if not rows:
        return
    now = utcnow()
    values = [{**r, "team_id": team_id, "created_at": now, "updated_at": now} for r in rows]
    dialect = session.get_bind().dialect.name
    statement: Any
    if dialect == "postgresql":
        statement = postgresql.insert(NOTES_TABLE).on_conflict_do_nothing()
    elif dialect == "sqlite":
        statement = sqlite.insert(NOTES_TABLE).on_conflict_do_nothing()
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise NotImplementedError(dialect)
    session.execute(statement, values)
