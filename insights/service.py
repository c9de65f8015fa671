"""Use cases: the only place that opens transactions and joins storage to the pure core.

They return frozen dataclasses, never Slack payloads or formatted text.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from insights.accounts_csv import (
    CANONICAL_FIELDS,
    FileProblem,
    decode_csv_bytes,
    parse_accounts_csv,
)
from insights.config import ICPDefinition, Taxonomy
from insights.errors import AccountNotFoundError, NoAccountsError, QueryError
from insights.import_plan import plan_account_import
from insights.matching import (
    AccountIndex,
    AccountRef,
    MatchedFrom,
    QueryKeys,
    Suggestion,
    accept_fuzzy,
    rank_fuzzy,
)
from insights.normalize import name_key
from insights.scoring import FitScore, score_account
from insights.tag_learning import Correction, describe, learn
from insights.tagging import Tagger
from storage.models import Account, TaggingExample
from storage.repositories import (
    AccountRepository,
    ImportRunRepository,
    NoteRepository,
    TaggingExampleRepository,
    WorkspaceRepository,
)

SessionFactory = sessionmaker[Session]
MAX_QUERY_LENGTH = 300
# Terminal escape sequences (colours pasted along with a name), then control and invisible characters.
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")
# key=value pairs in an ad-hoc check; a value runs until the next " key=" or the end.
_PAIR = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(\"[^\"]*\"|'[^']*'|.*?)(?=\s+[A-Za-z_][A-Za-z0-9_]*=|\s*$)")
_IMPORT_BATCH = 5000
OUTCOME_KINDS = ("win", "loss", "renewal_loss", "implementation_failure", "customer_win")
RECENT_OUTCOMES = 3  # how many captured outcomes a fit answer lists
# progress(phase, done, total): phase "read" counts file lines, "write" counts accounts saved.
ImportProgress = Callable[[str, int, int], None]


# ---------------------------------------------------------------------------------------------
# Fit check


@dataclass(frozen=True)
class FitAnswer:
    """The fit of one account (or an ad-hoc prospect) against the ICP."""

    query: str
    account: str
    account_id: int | None
    matched_from: MatchedFrom | str
    icp_version: str
    fit: FitScore
    fields: dict[str, Any]
    outcomes: dict[str, int] = field(default_factory=dict)
    tier_names: tuple[str, ...] = ()
    recent: tuple[RecentOutcome, ...] = ()


@dataclass(frozen=True)
class RecentOutcome:
    """One captured outcome of an account, as a fit answer lists it."""

    kind: str
    posted_at: datetime
    permalink: str | None
    text: str
    reasons: tuple[str, ...]
    competitor: str | None


@dataclass(frozen=True)
class AdHocQuery:
    name: str
    fields: dict[str, str]


def clean_query(text: str) -> str:
    """Remove control and invisible characters; refuse empty or over-long queries."""
    cleaned = " ".join(_CONTROL.sub(" ", _ANSI.sub("", text)).split())
    if not cleaned:
        raise QueryError(
            "give an account name or domain, e.g. 'icp-bot fit \"Acme Corp\"', or a prospect with "
            "key=value fields: 'icp-bot fit \"Newco industry=Software employees=300\"'"
        )
    if len(cleaned) > MAX_QUERY_LENGTH:
        raise QueryError(
            f"the account name is {len(cleaned):,} characters long; names have at most "
            f"{MAX_QUERY_LENGTH} characters"
        )
    return cleaned


def parse_adhoc(text: str) -> AdHocQuery | None:
    """Split "Newco industry=Software employees=300 country=United States" into name and fields.

    Returns None when the text holds no key=value pair (a plain account lookup).
    """
    first = re.search(r"(?:^|\s)[A-Za-z_][A-Za-z0-9_]*=", text)
    if first is None:
        return None
    name = text[: first.start()].strip() or "Ad-hoc prospect"
    fields = {}
    for key, raw in _PAIR.findall(text[first.start() :].strip()):
        value = raw.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        fields[key.lower()] = value
    return AdHocQuery(name=name, fields=fields)


def account_fields(row: dict[str, Any] | Account) -> dict[str, Any]:
    """The fields criteria can name: canonical columns, then extras (never shadowing canonicals)."""
    get = row.get if isinstance(row, dict) else (lambda k: getattr(row, k, None))
    fields: dict[str, Any] = {}
    extra = get("extra") or {}
    fields.update({k: v for k, v in extra.items() if k not in CANONICAL_FIELDS})
    for name in CANONICAL_FIELDS:
        fields[name] = get(name)
    return fields


def _ref(account: Account, aliases: list[str]) -> AccountRef:
    return AccountRef(account.id, account.name, account.domain, account.country, tuple(aliases))


def resolve_account(
    repo: AccountRepository, query: str, name_keys: Mapping[int, str] | None = None
) -> tuple[Account, MatchedFrom]:
    """Find the account a person means, or raise AccountNotFoundError with suggestions.

    Exact steps run on the few candidates an indexed lookup finds; only when they fail is every
    name in the workspace ranked for a fuzzy match.
    """
    keys = QueryKeys.of(query)
    candidates = repo.candidates(
        name_key=keys.name_key,
        compact_key=keys.compact_key,
        domain=keys.domain,
        first_word=keys.first_word,
    )
    if candidates:
        aliases = repo.aliases_of([a.id for a in candidates])
        found = AccountIndex.build(_ref(a, aliases.get(a.id, [])) for a in candidates).resolve(
            query, fuzzy=False
        )
        if found.status == "matched" and found.account is not None:
            return next(a for a in candidates if a.id == found.account.id), found.matched_from or "name"
        if found.status == "ambiguous":
            raise AccountNotFoundError(query, found.suggestions, ambiguous=True)
    # A long-running process passes the name keys it keeps warm; the CLI reads them.
    keys_by_id = name_keys if name_keys else repo.name_keys()
    if not keys_by_id:
        raise NoAccountsError()
    ranked = rank_fuzzy(keys.name_key, keys_by_id) if keys.name_key else []
    shortlisted = {a.id: a for a in repo.by_ids([i for i, _ in ranked])}
    ranked = [(i, s) for i, s in ranked if i in shortlisted]  # warm keys may name a since-deleted id
    best = accept_fuzzy(keys.name_key, ranked, keys_by_id)
    if best is not None:
        return shortlisted[best], "fuzzy"
    suggestions = [
        Suggestion(i, shortlisted[i].name, round(s, 1), shortlisted[i].domain, shortlisted[i].country)
        for i, s in ranked
    ]
    raise AccountNotFoundError(query, suggestions)


def fit_for(
    session_factory: SessionFactory,
    team_id: str,
    query: str,
    icp: ICPDefinition,
    *,
    name_keys: Mapping[int, str] | None = None,
) -> FitAnswer:
    """The fit check behind `icp-bot fit` and `/icp-fit`: resolve the name (or read ad-hoc
    key=value fields), score it, and say how it was matched."""
    text = clean_query(query)
    adhoc = parse_adhoc(text)
    if adhoc is not None:
        fit = score_account(adhoc.fields, icp)
        return FitAnswer(
            query=text,
            account=adhoc.name,
            account_id=None,
            matched_from="ad hoc",
            icp_version=icp.version,
            fit=fit,
            fields=dict(adhoc.fields),
            tier_names=tuple(icp.tiers),
        )
    with session_factory() as session:
        account, how = resolve_account(AccountRepository(session, team_id), text, name_keys)
        return _account_answer(session, team_id, text, account, how, icp=icp)


def fit_for_account_id(
    session_factory: SessionFactory, team_id: str, account_id: int, icp: ICPDefinition
) -> FitAnswer:
    """The fit of an account picked by id (a suggestion button, a shared answer)."""
    with session_factory() as session:
        found = AccountRepository(session, team_id).by_ids([account_id])
        if not found:
            raise QueryError("that account is no longer in the workspace; it may have been re-imported")
        return _account_answer(session, team_id, found[0].name, found[0], "name", icp=icp)


def _account_answer(
    session: Session, team_id: str, text: str, account: Account, how: MatchedFrom | str, *, icp: ICPDefinition
) -> FitAnswer:
    fields = account_fields(account)
    notes = NoteRepository(session, team_id)
    counts = notes.counts_by_kind(account.id)
    recent = tuple(
        RecentOutcome(
            str(n.kind), n.posted_at if n.posted_at.tzinfo else n.posted_at.replace(tzinfo=UTC),
            n.permalink, n.text, tuple(n.reasons or ()), n.competitor,
        )
        for n in notes.latest_for_account(account.id, RECENT_OUTCOMES)
    )  # fmt: skip
    fit = score_account(fields, icp)
    shown = {k: v for k, v in fields.items() if v not in (None, "")}
    return FitAnswer(
        query=text,
        account=account.name,
        account_id=account.id,
        matched_from=how,
        icp_version=icp.version,
        fit=fit,
        fields=shown,
        outcomes={kind: counts[kind] for kind in OUTCOME_KINDS if kind in counts},
        tier_names=tuple(icp.tiers),
        recent=recent,
    )


@dataclass(frozen=True)
class ScoredAccount:
    account_id: int
    name: str
    domain: str | None
    fit: FitScore


@dataclass(frozen=True)
class FitOverview:
    """Every account of a workspace scored: the ranking and the tier distribution."""

    icp_version: str
    total: int
    tier_counts: dict[str, int]
    accounts: list[ScoredAccount]


def score_all(
    session_factory: SessionFactory,
    team_id: str,
    icp: ICPDefinition,
    *,
    tier: str | None = None,
    limit: int | None = None,
) -> FitOverview:
    """Score every account; keep those of `tier` (all when None), best first, up to `limit`."""
    counts: Counter[str] = Counter(dict.fromkeys(icp.tiers, 0))
    scored: list[ScoredAccount] = []
    total = 0
    with session_factory() as session:
        for row in AccountRepository(session, team_id).iter_fields():
            fit = score_account(account_fields(row), icp)
            counts[fit.tier] += 1
            total += 1
            if tier is None or fit.tier == tier:
                scored.append(ScoredAccount(row["id"], row["name"], row["domain"], fit))
    order = {t: i for i, t in enumerate(icp.tiers)}
    scored.sort(key=lambda s: (order[s.fit.tier], -s.fit.score, s.name.casefold()))
    return FitOverview(icp.version, total, dict(counts), scored[:limit] if limit else scored)


# ---------------------------------------------------------------------------------------------
# Account import


@dataclass(frozen=True)
class ImportSummary:
    source: str
    layout: str
    rows: int
    created: int
    updated: int
    unchanged: int
    merged_in_file: int
    extra_fields: list[str]
    warnings: list[FileProblem]
    total_accounts: int


def import_accounts(
    session_factory: SessionFactory,
    team_id: str,
    data: bytes,
    source: str,
    *,
    encoding: str | None = None,
    progress: ImportProgress | None = None,
) -> ImportSummary:
    """Import a CRM accounts export: create new accounts and update known ones in place.

    The whole file is validated before anything is written, and everything is written in one
    transaction, so a bad file or a failure half-way leaves the database as it was.
    """
    read_progress = (lambda done, total: progress("read", done, total)) if progress else None
    parsed = parse_accounts_csv(decode_csv_bytes(data, source, encoding), source, read_progress)
    with session_factory.begin() as session:
        WorkspaceRepository(session).get_or_create(team_id)
        repo = AccountRepository(session, team_id)
        plan = plan_account_import(repo.match_keys(), parsed)
        total_writes = len(plan.inserts) + len(plan.updates)
        done = 0
        alias_pairs = list(plan.alias_pairs)
        for start in range(0, len(plan.inserts), _IMPORT_BATCH):
            batch = plan.inserts[start : start + _IMPORT_BATCH]
            batch_aliases = plan.insert_aliases[start : start + _IMPORT_BATCH]
            if any(batch_aliases):
                # Ids are needed only to attach aliases (a canonical `aliases` column).
                ids = repo.insert_many(batch, return_ids=True)
                for account_id, names in zip(ids, batch_aliases, strict=True):
                    alias_pairs += [(account_id, alias, name_key(alias)) for alias in names]
            else:
                repo.insert_many(batch)
            done += len(batch)
            if progress is not None:
                progress("write", done, total_writes)
        for start in range(0, len(plan.updates), _IMPORT_BATCH):
            batch = plan.updates[start : start + _IMPORT_BATCH]
            repo.update_many(batch)
            done += len(batch)
            if progress is not None:
                progress("write", done, total_writes)
        repo.add_aliases(alias_pairs, source="import")
        ImportRunRepository(session, team_id).record(
            kind="accounts",
            source_name=source,
            layout=parsed.layout,
            rows=len(parsed.records),
            created=len(plan.inserts),
            updated=len(plan.updates),
            unchanged=plan.unchanged,
        )
        total = repo.count()
    return ImportSummary(
        source=source,
        layout=parsed.layout,
        rows=len(parsed.records),
        created=len(plan.inserts),
        updated=len(plan.updates),
        unchanged=plan.unchanged,
        merged_in_file=plan.merged_in_file,
        extra_fields=plan.extra_fields,
        warnings=parsed.warnings,
        total_accounts=total,
    )


# ---------------------------------------------------------------------------------------------
# Tagging


def build_tagger(session_factory: SessionFactory, team_id: str, taxonomy: Taxonomy) -> Tagger:
    """A tagger over the workspace's accounts and aliases, taught by its people's corrections.

    Build once and keep it warm: for 100,000 accounts this takes a few seconds.
    """
    with session_factory() as session:
        repo = AccountRepository(session, team_id)
        refs = repo.refs()
        aliases = repo.all_aliases()
        examples = [_correction(e) for e in TaggingExampleRepository(session, team_id).all()]
    accounts = (
        AccountRef(account_id, name, domain, country, tuple(aliases.get(account_id, ())))
        for account_id, name, domain, country in refs
    )
    tagger = Tagger(accounts, taxonomy)
    if examples:
        tagger.learn(learn(examples, tagger))
    return tagger


def _correction(example: TaggingExample) -> Correction:
    return Correction(example.text, example.kind, example.account, example.competitor, tuple(example.reasons))


@dataclass(frozen=True)
class LearningSummary:
    added: int
    total_examples: int
    learned: list[str]  # what the workspace's tagger now knows, in words


def record_corrections(
    session_factory: SessionFactory,
    team_id: str,
    corrections: Sequence[Correction],
    taxonomy: Taxonomy,
    *,
    source: str = "correction",
    user_id: str | None = None,
) -> LearningSummary:
    """Store labelled messages for the workspace and report what its tagger learns from them.

    The Slack app calls this when a person corrects a note; `icp-bot tag --learn` with a file.
    """
    rows = [correction_row(c, source, user_id) for c in corrections]
    added, total = store_examples(session_factory, team_id, rows)
    tagger = build_tagger(session_factory, team_id, taxonomy)
    return LearningSummary(added, total, describe(tagger.learned, tagger))


def store_examples(
    session_factory: SessionFactory, team_id: str, rows: list[dict[str, Any]]
) -> tuple[int, int]:
    """Store labelled messages; returns (added, total). The bot refreshes its warm tagger itself."""
    with session_factory.begin() as session:
        WorkspaceRepository(session).get_or_create(team_id)
        repo = TaggingExampleRepository(session, team_id)
        added = repo.add_many(rows)
        total = repo.count()
    return added, total


def correction_row(correction: Correction, source: str, user_id: str | None) -> dict[str, Any]:
    return {"text": correction.text, "kind": correction.kind, "account": correction.account,
            "competitor": correction.competitor, "reasons": list(correction.reasons),
            "source": source, "created_by": user_id}  # fmt: skip


def iter_accounts(session_factory: SessionFactory, team_id: str) -> Iterator[dict[str, Any]]:
    """Every account of a workspace as a dict of its stored fields (for export and tests)."""
    with session_factory() as session:
        yield from AccountRepository(session, team_id).iter_fields()


def tagging_data_version(session_factory: SessionFactory, team_id: str) -> tuple[object, ...]:
    """Changes whenever what a tagger is built from changes (accounts, aliases, corrections).

    A running bot compares it now and then to know when to rebuild its warm tagger.
    """
    with session_factory() as session:
        return (
            *AccountRepository(session, team_id).version(),
            TaggingExampleRepository(session, team_id).count(),
        )


def account_name_keys(session_factory: SessionFactory, team_id: str) -> dict[int, str]:
    """Every account's name key by id: what fuzzy lookups rank (kept warm by the bot)."""
    with session_factory() as session:
        return AccountRepository(session, team_id).name_keys()
