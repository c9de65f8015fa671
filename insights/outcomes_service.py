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

import gc
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from operator import attrgetter
from typing import Any

from sqlalchemy.orm import Session

from insights.accounts_csv import FileProblem, decode_csv_bytes
from insights.config import ICPDefinition, Rule, Taxonomy
from insights.errors import AccountNotFoundError, NoAccountsError
from insights.matching import AccountIndex, AccountRef, NameKeys, QueryKeys, accept_fuzzy, rank_fuzzy
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
from insights.scoring import evaluate_rule, score_account
from insights.service import (
    OUTCOME_KINDS,
    ImportProgress,
    SessionFactory,
    account_fields,
    build_tagger,
    resolve_account,
)
from insights.tagging import Tagger
from storage.engine import bulk_write_cache
from storage.models import utcnow
from storage.repositories import (
    CANDIDATE_LIMIT,
    AccountRepository,
    ImportRunRepository,
    NoteRepository,
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


@contextmanager
def _cycle_collection_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for the length of an import.

    A large file keeps a million records alive while millions of short-lived tuples and dicts
    come and go, and each full collection walks every live object: on a million deals those
    walks cost more than a third of the import. Reference counting still frees everything; the
    few cycles made meanwhile wait for the collector, which is restored afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@_cycle_collection_paused()
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
    with session_factory.begin() as session, bulk_write_cache(session.connection()):
        WorkspaceRepository(session).get_or_create(team_id)
        accounts = _Accounts(session, team_id, icp)
        accounts.prepare(r.account for r in parsed.records if r.closed)
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
    statuses = Counter(map(attrgetter("status"), parsed.records))
    return OutcomesImportSummary(
        source=source,
        layout=parsed.layout,
        rows=parsed.rows,
        closed=statuses["won"] + statuses["lost"],
        created=tally.created,
        updated=tally.updated,
        unchanged=tally.unchanged,
        kept_corrected=tally.kept_corrected,
        skipped_open=statuses["open"],
        skipped_not_outcome=statuses["not_an_outcome"],
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

    CRM picklists repeat ("Price" on thousands of rows): each distinct text is tagged once, and
    deals alike in what the tagger reads share one answer (the same list: never change it).
    """

    def __init__(self, tagger: Tagger) -> None:
        self.tagger = tagger
        self.cache: dict[str, tuple[tuple[str, ...], str | None]] = {}
        self.deals: dict[tuple[str | None, ...], tuple[list[str], str | None]] = {}

    def of(self, record: DealRecord) -> tuple[list[str], str | None]:
        key = (record.status, record.loss_reason, record.won_reason, record.description)
        found = self.deals.get(key)
        if found is None:
            found = self.deals[key] = self._read(record)
        return found

    def _read(self, record: DealRecord) -> tuple[list[str], str | None]:
        text, codes = tagging_text(record)  # depends on the record's `key` fields only
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
    else a confident fuzzy match; a name with no account is kept as written, without a tier.

    A file naming many accounts has them resolved at once (`prepare`): the workspace's stored
    lookup keys are read once and each name's candidates found in memory, giving the answers
    the per-name database lookups give (see `_Lookup`).
    """

    def __init__(self, session: Session, team_id: str, icp: ICPDefinition) -> None:
        self.repo = AccountRepository(session, team_id)
        self.tiers = _Tiers(icp)
        self.resolved: dict[str, tuple[str, int | None, str | None]] = {}  # by folded name
        self.written: dict[str, tuple[str, int | None, str | None]] = {}  # by name as written
        self.unknown: dict[str, None] = {}  # insertion-ordered set of names as written
        self._keys: dict[int, str] | None = None

    def prepare(self, names: Iterable[str | None]) -> None:
        """Resolve these names ahead of `resolve`, all at once when they are many."""
        first: dict[str, str] = {}  # folded name -> its first spelling, which `resolve` keeps
        for name in dict.fromkeys(names):  # each spelling once, in file order
            if name is not None and name not in self.written:
                first.setdefault(fold(name), name)
        pending = {key: name for key, name in first.items() if key not in self.resolved}
        if len(pending) * _BULK_SHARE < max(self.repo.count(), 1):
            return  # a few names in a large workspace: one indexed lookup each is quicker
        lookup = _Lookup(self.repo.lookup_rows(), self.repo.alias_rows())
        matched = {key: lookup.resolve(name) for key, name in pending.items()}
        found = {i for i in matched.values() if i is not None}
        fields = {int(f["id"]): f for f in self.repo.fields_of(found)}
        for key, account_id in matched.items():
            if account_id is None or account_id not in fields:
                self.resolved[key] = (pending[key], None, None)
            else:
                account = fields[account_id]
                self.resolved[key] = (account["name"], account_id, self.tiers.of(account_fields(account)))

    def resolve(self, name: str | None) -> tuple[str | None, int | None, str | None]:
        """(name, account id, tier now) of the account a deal names."""
        if name is None:
            return None, None, None
        found = self.written.get(name)
        if found is None:
            key = fold(name)
            found = self.resolved.get(key)
            if found is None:
                found = self.resolved[key] = self._resolve_one(name)
            self.written[name] = found
        if found[1] is None:
            self.unknown.setdefault(found[0])
        return found

    def _resolve_one(self, name: str) -> tuple[str, int | None, str | None]:
        if self._keys is None:
            self._keys = self.repo.name_keys()  # fuzzy matching ranks these, loaded once
        try:
            account, _ = resolve_account(self.repo, name, self._keys)
        except (AccountNotFoundError, NoAccountsError):
            return name, None, None
        return account.name, account.id, self.tiers.of(account_fields(account))


# Past one distinct account name per this many accounts in the workspace, a file's names are
# resolved in memory from the workspace's lookup keys rather than by a few queries each.
_BULK_SHARE = 100


class _Lookup:
    """Every account's stored lookup keys and a workspace-wide name index, for resolving many
    names without a query each.

    A name's candidates are the accounts `AccountRepository.candidates` finds (the same keys and
    the same limit), and the index answers for just those (`within`), as `resolve_account` does
    with an index built from them; the fuzzy step then ranks every name key, as it does too.
    """

    _COLUMNS = ("name_key", "compact_key", "first_word", "domain", "domain_stem")

    def __init__(self, rows: Sequence[tuple[Any, ...]], aliases: Sequence[tuple[int, str, str]]) -> None:
        self.by: dict[str, dict[str, list[int]]] = {c: {} for c in (*self._COLUMNS, "alias_key")}
        alias_names: dict[int, list[str]] = {}
        for account_id, alias, alias_key in aliases:
            alias_names.setdefault(account_id, []).append(alias)
            self.by["alias_key"].setdefault(alias_key, []).append(account_id)
        refs: list[AccountRef] = []
        self.name_keys: dict[int, str] = {}
        for account_id, name, domain, country, name_key, compact, first_word, stem in rows:
            self.name_keys[account_id] = name_key
            for column, value in zip(
                self._COLUMNS, (name_key, compact, first_word, domain, stem), strict=True
            ):
                if value is not None:
                    self.by[column].setdefault(value, []).append(account_id)
            refs.append(AccountRef(account_id, name, domain, country, tuple(alias_names.get(account_id, ()))))
        self.index = AccountIndex.build(refs)
        self._fuzzy_keys: NameKeys | None = None

    @property
    def fuzzy_keys(self) -> NameKeys:
        """The name keys indexed for fuzzy ranking, built at the first name that needs it."""
        if self._fuzzy_keys is None:
            self._fuzzy_keys = NameKeys(self.name_keys)
        return self._fuzzy_keys

    def candidates(self, keys: QueryKeys) -> list[int]:
        """The ids `AccountRepository.candidates` finds for these keys, lowest first."""
        lookups = [
            ("name_key", keys.name_key),
            ("compact_key", keys.compact_key),
            ("compact_key", keys.name_key.replace(" ", "")),
        ]
        if " " not in keys.name_key and keys.compact_key:
            lookups.append(("domain_stem", keys.compact_key))
        if keys.domain:
            lookups.append(("domain", keys.domain))
        if keys.first_word:
            lookups.append(("first_word", keys.first_word))
        ids = set(self.by["alias_key"].get(keys.name_key, ()))
        for column, value in lookups:
            if value:
                ids.update(self.by[column].get(value, ()))
        return sorted(ids)[:CANDIDATE_LIMIT]

    def resolve(self, name: str) -> int | None:
        """The id of the account `resolve_account` finds for this name, or None."""
        keys = QueryKeys.of(name)
        candidates = self.candidates(keys)
        if candidates:
            found = self.index.resolve(name, fuzzy=False, within=set(candidates))
            if found.status == "matched" and found.account is not None:
                return found.account.id
            if found.status == "ambiguous":
                return None
        if not self.name_keys or not keys.name_key:
            return None
        names = self.fuzzy_keys
        return accept_fuzzy(keys.name_key, rank_fuzzy(keys.name_key, names), names)


class _Tiers:
    """Today's tier of accounts by their fields: `score_account(fields, icp).tier`, computed once
    per distinct combination of rule results (each rule evaluated once per distinct value)."""

    def __init__(self, icp: ICPDefinition) -> None:
        self.icp = icp
        self.rules = [*icp.criteria, *icp.disqualifiers]
        self.results: list[dict[tuple[type, Any], bool | None]] = [{} for _ in self.rules]
        self.tiers: dict[tuple[bool | None, ...], str] = {}

    def of(self, fields: dict[str, Any]) -> str:
        outcome: list[bool | None] = []
        for rule, memo in zip(self.rules, self.results, strict=True):
            value = fields.get(rule.field)
            try:
                token = (type(value), value)
                ok = memo[token] if token in memo else memo.setdefault(token, _rule_result(rule, value))
            except TypeError:  # an unhashable value (a list in an extra field)
                ok = _rule_result(rule, value)
            outcome.append(ok)
        key = tuple(outcome)
        tier = self.tiers.get(key)
        if tier is None:
            tier = self.tiers[key] = score_account(fields, self.icp).tier
        return tier


def _rule_result(rule: Rule, value: Any) -> bool | None:
    return evaluate_rule(rule, {rule.field: value})[0]


# What a batch reads of the notes it may change, and the columns of a new note, in order.
_READ = (*_COMPARED, "tier", "corrected_by", "source")
_NEW = (*_COMPARED, "channel", "ts", "user_id", "tier", "confidence", "source", "created_at", "updated_at")


@dataclass
class _Importer:
    """Writes one file's deals, batch by batch, inside the caller's transaction."""

    session: Session
    team_id: str
    parsed: ParsedOutcomes
    labels: _Labels
    accounts: _Accounts
    tally: _Tally

    def __post_init__(self) -> None:
        self.notes = NoteRepository(self.session, self.team_id)
        # The deals imported before: only they can have a note (deal ids are unique in a file).
        self.known = self.notes.ids_in(CRM_CHANNEL)
        # Deals repeat close dates, amounts and kinds: each distinct one is built once and shared.
        self.times: dict[date, datetime] = {}
        self.amounts: dict[tuple[float, str], dict[str, Any]] = {}

    def batch(self, batch: Sequence[DealRecord]) -> None:
        stamps = [self.parsed.ts(r) for r in batch]
        known = [self.known[ts] for ts in stamps if ts in self.known]
        existing = {row["ts"]: row for row in self.notes.rows_by_id(known, _READ)}
        inserts: list[tuple[Any, ...]] = []
        updates: list[dict[str, Any]] = []
        now = utcnow()
        for record, ts in zip(batch, stamps, strict=True):
            note = existing.get(ts)
            protected = note is not None and (note["corrected_by"] is not None or note["source"] != "import")
            if not record.closed:
                if note is not None and not protected and note["status"] == "active":
                    updates.append(self._retract(note, record, now))
                continue
            self._deal(record, ts, note, protected, now, inserts=inserts, updates=updates)
        self.notes.insert_rows(_NEW, inserts)
        self.notes.update_rows(updates)

    def _retract(self, note: dict[str, Any], record: DealRecord, now: datetime) -> dict[str, Any]:
        """A deal open again (or closed as a duplicate) is no outcome now: its earlier note goes."""
        self.tally.retracted += 1
        reason = "reopened" if record.status == "open" else "not_an_outcome"
        return {"id": note["id"], "status": "retracted", "retracted_reason": reason, "updated_at": now}

    def _deal(
        self,
        record: DealRecord,
        ts: str,
        note: dict[str, Any] | None,
        protected: bool,
        now: datetime,
        *,
        inserts: list[tuple[Any, ...]],
        updates: list[dict[str, Any]],
    ) -> None:
        """A closed deal: the row of a new note, or the changes to its note (none once up to date)."""
        tally = self.tally
        outcome = outcome_of(record)
        if outcome.kind is not None:
            tally.kinds[outcome.kind] += 1
        tally.renewals_kept += outcome.renewal_kept
        name, account_id, tier = self.accounts.resolve(record.account)
        tally.matched += account_id is not None
        if protected:
            tally.kept_corrected += 1
            return
        reasons, competitor = self.labels.of(record)
        values = (
            note_text(record),
            outcome.kind,
            name,
            account_id,
            competitor,
            reasons,
            self._amount(record),
            self._time(record),
            note_details(record, self.parsed.layout),
            record.deal_id,
            "active",
            None,
        )  # in the order of _COMPARED
        if note is None:
            tally.created += 1
            inserts.append((*values, CRM_CHANNEL, ts, None, tier, 1.0, "import", now, now))
            return
        changes = {k: v for k, v in zip(_COMPARED, values, strict=True) if not _same(k, note[k], v)}
        if not changes:
            tally.unchanged += 1
            return
        # The tier is the account's when the outcome was first recorded; a new account sets it anew.
        if "account_id" in changes or (note["tier"] is None and account_id is not None):
            changes["tier"] = tier
        updates.append({"id": note["id"], **changes, "updated_at": now})
        tally.updated += 1

    def _time(self, record: DealRecord) -> datetime:
        assert record.close_date is not None
        found = self.times.get(record.close_date)
        if found is None:
            found = self.times[record.close_date] = posted_at(record)
        return found

    def _amount(self, record: DealRecord) -> dict[str, Any] | None:
        if record.amount is None:
            return None
        key = (record.amount, record.currency)
        found = self.amounts.get(key)
        if found is None:
            found = self.amounts[key] = amount_of(record) or {}
        return found


def _same(key: str, old: Any, new: Any) -> bool:
    if key == "posted_at" and isinstance(old, datetime):
        return bool((old if old.tzinfo else old.replace(tzinfo=UTC)) == new)
    if key == "reasons":
        return list(old or []) == list(new)
    return bool(old == new)
