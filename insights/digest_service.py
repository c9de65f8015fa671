"""The digest's use case: load the outcomes of the trend window and their accounts, then compute.

Only what the digest reads leaves the database: active notes of the TREND_WEEKS + 1 weeks (plus
a few days either side, so a CRM row can pair with a Slack note across the window's edge), and
the accounts those notes name, with the fields the spotlight and the tier need. At 100,000
accounts and 1,000,000 notes that is about an eighth of the notes and the accounts with an
outcome in those weeks, never the whole table.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from insights.accounts_csv import CANONICAL_FIELDS
from insights.config import NUMERIC_OPERATORS, Config, ICPDefinition, Rule
from insights.digest import (
    DEDUPE_DAYS,
    SPOTLIGHT_FIELDS,
    Digest,
    compute_digest,
    digest_period,
    trend_window,
)
from insights.scoring import evaluate_rule, score_account
from storage.repositories import DigestInputRepository

SessionFactory = sessionmaker[Session]
# How far outside the trend window notes are read: CRM rows that may pair with a note inside it.
WINDOW_MARGIN = timedelta(days=DEDUPE_DAYS + 1)
# The columns of DigestInputRepository.outcome_rows, in its order.
OUTCOME_COLUMNS = (
    "id", "kind", "account_id", "tier", "posted_at", "amount", "currency", "reasons", "competitor",
    "source", "crm_id", "renewal",
)  # fmt: skip
EVIDENCE_COLUMNS = ("account", "permalink", "text")
_UNKNOWN, _NO, _YES = 0, 1, 2  # a rule's result on one account: None, False, True


def build_digest(session_factory: SessionFactory, team_id: str, config: Config, as_of: datetime) -> Digest:
    """The digest of the last full week before `as_of` (aware) in `config.digest.timezone`."""
    timezone = config.digest.timezone
    start, end = trend_window(digest_period(as_of, timezone))
    outcomes, accounts = load_digest_inputs(
        session_factory,
        team_id,
        config.icp,
        since=start - WINDOW_MARGIN,
        until=end + WINDOW_MARGIN,
        evidence=False,
    )
    digest = compute_digest(outcomes, accounts, icp=config.icp, as_of=as_of, timezone=timezone)
    return _with_evidence(session_factory, team_id, digest)


def _with_evidence(session_factory: SessionFactory, team_id: str, digest: Digest) -> Digest:
    """The notable items with their notes' account name, permalink and text (read for those only)."""
    if not digest.notable:
        return digest
    with session_factory() as session:
        rows = DigestInputRepository(session, team_id).evidence_rows(n.note_id for n in digest.notable)
    found = {row[0]: row for row in rows}
    notable = tuple(
        replace(
            item,
            account=found[item.note_id][1],
            permalink=found[item.note_id][2],
            text=found[item.note_id][3],
        )
        if item.note_id in found
        else item
        for item in digest.notable
    )
    return replace(digest, notable=notable)


def load_digest_inputs(
    session_factory: SessionFactory,
    team_id: str,
    icp: ICPDefinition,
    *,
    since: datetime,
    until: datetime | None = None,
    evidence: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The `outcomes` and `accounts` frames of insights.digest for notes posted in [since, until).

    Outcomes: active notes only (retracted ones count nowhere), `tier` the note's stored tier (the
    account's when captured), else the account's tier now (scored against `icp`), else None; a
    note whose account was deleted keeps its stored tier. Accounts: only those the notes name (the
    only ones any figure reads), with today's `tier` and the fields the spotlight and the ICP's
    rules read (industry, employees, country, every criterion and disqualifier field, extras
    included). Without `evidence` the outcomes lack `account`, `permalink` and `text` (the
    digest's defaults fill them; build_digest reads them for its notable items only).
    """
    named = list(dict.fromkeys([*SPOTLIGHT_FIELDS, *(r.field for r in (*icp.criteria, *icp.disqualifiers))]))
    fields = [f for f in named if f in CANONICAL_FIELDS]
    extras = [f for f in named if f not in CANONICAL_FIELDS]
    with session_factory() as session:
        repo = DigestInputRepository(session, team_id)
        outcomes = _outcomes_frame(repo.outcome_rows(since, until, evidence=evidence), evidence=evidence)
        ids = outcomes["account_id"].dropna().unique().astype(np.int64).tolist()
        account_rows = repo.account_rows(ids, fields, extra=bool(extras))
    accounts = _accounts_frame(account_rows, fields, extras, icp)
    # The tier: the note's stored tier (the account's when captured), else the account's now.
    now = pd.Series(accounts["tier"].to_numpy(), index=accounts["id"].astype(float).to_numpy())
    stored = outcomes["tier"]
    tier = stored.where(stored.notna(), outcomes["account_id"].map(now)).astype(object)
    outcomes["tier"] = tier.where(tier.notna(), None)
    return outcomes, accounts


def _columns(rows: Sequence[Sequence[Any]], width: int) -> list[np.ndarray[Any, np.dtype[Any]]]:
    """Rows transposed into one object array per column (half the time of DataFrame.from_records)."""
    return [np.fromiter(map(itemgetter(j), rows), dtype=object, count=len(rows)) for j in range(width)]


def _object_frame(columns: dict[str, np.ndarray[Any, np.dtype[Any]]]) -> pd.DataFrame:
    """A frame of object columns as given: text stays `object` (pandas 3 would otherwise infer and
    convert every text column to its string dtype, a fifth of the load time for nothing)."""
    return pd.DataFrame(
        {name: pd.Series(values, dtype=object, copy=False) for name, values in columns.items()}
    )


def _json_lists(values: np.ndarray[Any, np.dtype[Any]]) -> np.ndarray[Any, np.dtype[Any]]:
    """JSON texts (or already decoded lists, or None) as lists, each distinct text decoded once."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    decoded = [*(_as_list(u) for u in uniques.tolist()), []]  # the last: code -1, no reasons
    return np.fromiter(decoded, dtype=object, count=len(decoded))[codes]


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    return list(value) if isinstance(value, list) else []


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def _outcomes_frame(rows: Sequence[Sequence[Any]], *, evidence: bool) -> pd.DataFrame:
    names = (*OUTCOME_COLUMNS, *(EVIDENCE_COLUMNS if evidence else ()))
    data = dict(zip(names, _columns(rows, len(names)), strict=True))
    renewal = data.pop("renewal")
    reasons = _json_lists(data.pop("reasons"))
    posted = data.pop("posted_at")
    frame = _object_frame(data)
    frame["id"] = frame["id"].astype(np.int64)
    frame["account_id"] = pd.to_numeric(frame["account_id"]).astype(float)
    frame["amount"] = pd.to_numeric(frame["amount"], errors="coerce").astype(float)
    # Text on SQLite ("2026-11-16 14:03:00.000000", UTC), aware datetimes on PostgreSQL (parsing
    # those "as ISO 8601" would take the slow path, one at a time).
    text = len(posted) > 0 and isinstance(posted[0], str)
    when = pd.to_datetime(pd.Series(posted, dtype=object), utc=True, format="ISO8601" if text else None)
    frame["posted_at"] = when.astype("datetime64[ns, UTC]")
    frame["renewal_kept"] = pd.isna(data["kind"]) & (renewal == "kept")
    frame["reasons"] = pd.Series(reasons, dtype=object, copy=False)
    return frame


def _accounts_frame(
    rows: Sequence[Sequence[Any]], fields: Sequence[str], extras: Sequence[str], icp: ICPDefinition
) -> pd.DataFrame:
    names = ("id", *fields, *(("extra",) if extras else ()))
    data = dict(zip(names, _columns(rows, len(names)), strict=True))
    extra = data.pop("extra", None)
    frame = _object_frame(data)
    frame["id"] = frame["id"].astype(np.int64)
    for numeric in ("employees", "annual_revenue", "arr"):
        if numeric in frame.columns:
            frame[numeric] = pd.to_numeric(frame[numeric], errors="coerce").astype(float)
    documents = [_as_dict(e) for e in extra] if extra is not None else []  # JSON text on SQLite
    for name in extras:  # an extra column never shadows a canonical one (service.account_fields)
        frame[name] = pd.Series([d.get(name) for d in documents], dtype=object)
    frame["tier"] = account_tiers(frame, icp)
    return frame


def account_tiers(accounts: pd.DataFrame, icp: ICPDefinition) -> np.ndarray[Any, np.dtype[Any]]:
    """Today's tier of every row of `accounts` (a column per field the ICP's rules name).

    Equal to `score_account(fields, icp).tier` row by row, without scoring every row: a tier
    depends only on which rules match, so each rule is evaluated once per distinct value of its
    field (once per interval between its bounds for a numeric column), and score_account runs
    once per distinct combination of results.
    """
    rules = [*icp.criteria, *icp.disqualifiers]
    n = len(accounts)
    if n == 0:
        return np.empty(0, dtype=object)
    results = [
        _rule_results(rule, accounts[rule.field])
        if rule.field in accounts.columns
        else np.full(n, _UNKNOWN, dtype=np.int64)
        for rule in rules
    ]
    if len(results) <= 38:  # one base-3 number per row fits in 63 bits
        key = np.zeros(n, dtype=np.int64)
        for column in results:
            key = key * 3 + column
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    else:  # pragma: no cover - an ICP of more than 38 rules
        _, first, inverse = np.unique(
            np.stack(results, axis=1), axis=0, return_index=True, return_inverse=True
        )
    tiers = []
    for row in first:
        fields = {
            rule.field: accounts[rule.field].iat[row] for rule in rules if rule.field in accounts.columns
        }
        tiers.append(score_account(fields, icp).tier)
    return np.asarray(tiers, dtype=object)[inverse.reshape(-1)]


def _rule_results(rule: Rule, column: pd.Series) -> np.ndarray[Any, np.dtype[np.int64]]:
    """evaluate_rule's result (_UNKNOWN, _NO or _YES) for every value of `column`."""
    if rule.operator in NUMERIC_OPERATORS and pd.api.types.is_float_dtype(column.dtype):
        # A numeric rule's result is constant below, at, between and above its bounds: evaluate
        # one real value of each such interval.
        numbers = column.to_numpy(dtype=float)
        bounds = np.array(sorted({float(b) for b in (rule.between or (rule.operand,))}), dtype=float)
        slot = 2 * np.searchsorted(bounds, numbers, side="left") + np.isin(numbers, bounds)
        slot[np.isnan(numbers)] = -1
        _, first, inverse = np.unique(slot, return_index=True, return_inverse=True)
        table = np.array([_result(rule, float(numbers[i])) for i in first], dtype=np.int64)
        return table[inverse.reshape(-1)]
    values = column.to_numpy(dtype=object)
    try:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
    except TypeError:  # list values (an extra column): evaluate row by row
        return np.array([_result(rule, v) for v in values], dtype=np.int64)
    table = np.array([*(_result(rule, v) for v in uniques.tolist()), _UNKNOWN], dtype=np.int64)
    return table[codes]  # code -1 (missing) reads the last entry


def _result(rule: Rule, value: Any) -> int:
    matched, _ = evaluate_rule(rule, {rule.field: value})
    return _UNKNOWN if matched is None else (_YES if matched else _NO)
