"""The weekly ICP digest: the numbers, computed from outcomes and accounts (pure: pandas, no clock).

This module fixes the shapes every other part relies on (the service that loads the data, the
renderers for Slack, HTML and the terminal, the JSON of `icp-bot digest --json`).

Inputs (DataFrames; the caller's frames are never modified):

`outcomes`, one row per note that is `active` (retracted notes never reach this function):
    id: int; kind: str (win | loss | renewal_loss | implementation_failure | customer_win) or
    None for a renewal kept (details "renewal": "kept"); renewal_kept: bool;
    account_id: float (NaN when no account); account: str | None (name as captured);
    tier: str | None (the account's tier when captured, else its tier now, else None);
    posted_at: datetime64[ns, UTC] (the message time, or the CRM close date at 12:00 UTC);
    amount: float (NaN when unknown; in the note's currency, no conversion);
    currency: str | None; reasons: list[str]; competitor: str | None;
    permalink: str | None; text: str; source: str (message | import | form); crm_id: str | None.
`accounts`, one row per account: id: int, tier: str (today's tier), and the fields the spotlight
    reads: industry, employees, country and every criterion field (canonical or extra); a missing
    column is skipped. Only accounts with outcomes matter (the service passes just those).

Definitions (../shared/DOMAIN.md):
- periods are weeks Monday 00:00 to Monday 00:00 in the configured timezone; the digest period is
  the last full week before `as_of`; the trend covers it and the 12 weeks before it;
- win rate = wins / (wins + losses); None when both are 0; `small_sample` below 10 closed deals;
- inside the ICP = the top two tiers of the ICP definition;
- a captured note and a CRM-imported outcome of the same deal (same account and kind, within
  DEDUPE_DAYS) count once; the Slack note is kept as the evidence (its permalink).

Decisions where the issue leaves room (each is stated again where it is computed):
- every loss counts in the win rate, "no decision" included (its reason code says so); renewals
  kept, renewal losses, implementation failures and customer wins are in no win rate;
- "outside the ICP" is every closed deal not in the top two tiers, outcomes without a tier
  included, so inside + outside = all (the share of wins inside the ICP is a share of all wins);
- loss reasons and competitors are read from losses and renewal losses; a note's reason counts
  once per note; a competitor counts as written (the tagger and the CRM import canonicalise);
- tiers outside the current ICP's (a note captured under an older ICP) are listed after the ICP's
  tiers, by name; outcomes without any tier under "unknown";
- amounts are summed and compared as written, without currency conversion (the renewal-loss ARR
  says which currency, or "mixed").

Optional input columns may be absent (renewal_kept: False, amount: NaN, reasons: [], other text
columns: None); `id`, `kind`, `account_id`, `tier`, `posted_at` and `source` are required.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from insights.config import NUMERIC_OPERATORS, OUTCOME_KINDS, Criterion, ICPDefinition
from insights.normalize import format_number, split_list

DEDUPE_DAYS = 5
SMALL_SAMPLE = 10  # closed deals below which a rate is flagged, never shown as a bare percentage
TREND_WEEKS = 12
SPOTLIGHT_MIN_N = 8  # closed deals (or renewals) an attribute value needs before it is compared

RENEWAL_KEPT = "renewal_kept"  # the event name of a renewal won (no outcome kind)
UNKNOWN_TIER = "unknown"
PREVIOUS_WEEKS = 4  # loss reasons and competitors: this period against these weeks before it
TOP_RANKED = 5  # loss reasons and competitors listed
SPOTLIGHT_EACH = 3  # attribute values listed on each side of the baseline
Z = 1.959963984540054  # the 97.5% normal quantile: a 95% Wilson interval
EMPLOYEE_BANDS: tuple[tuple[float, str], ...] = (
    (200, "1–199 employees"),
    (1000, "200–999 employees"),
    (5000, "1,000–4,999 employees"),
    (math.inf, "5,000+ employees"),
)
REVENUE_BANDS: tuple[tuple[float, str], ...] = (
    (10e6, "under 10M"),
    (100e6, "10M–99M"),
    (1e9, "100M–999M"),
    (math.inf, "1B+"),
)
SPOTLIGHT_FIELDS = ("industry", "employees", "country")  # always looked at, before criterion fields
_REQUIRED = ("id", "kind", "account_id", "tier", "posted_at", "source")
_OPTIONAL: dict[str, Any] = {
    "renewal_kept": False,
    "account": None,
    "amount": math.nan,
    "currency": None,
    "competitor": None,
    "permalink": None,
    "text": "",
    "crm_id": None,
}
_EVENTS = (*OUTCOME_KINDS, RENEWAL_KEPT)


@dataclass(frozen=True)
class Period:
    start: date  # a Monday, in `timezone`
    end: date  # the next Monday (exclusive)
    timezone: str


@dataclass(frozen=True)
class Rate:
    """A rate with its n, honest about small samples (Wilson 95% interval)."""

    numerator: int
    denominator: int
    value: float | None  # None when denominator is 0
    low: float | None
    high: float | None
    small_sample: bool


@dataclass(frozen=True)
class TierStats:
    tier: str  # a tier name, or "unknown" for outcomes without a tier
    wins: int
    losses: int
    win_rate: Rate
    renewal_losses: int
    renewal_loss_arr: float | None  # sum of known amounts; None when none is known
    renewals_kept: int
    implementation_failures: int
    customer_wins: int
    # The currency of renewal_loss_arr: one code, "mixed" when the amounts differ, None when none.
    renewal_loss_currency: str | None = None
    renewal_losses_with_amount: int = 0  # how many of the renewal losses the ARR sum covers


@dataclass(frozen=True)
class WeekStats:
    week_start: date
    wins: int
    losses: int
    win_rate: float | None
    icp_wins: int
    icp_losses: int
    icp_win_rate: float | None
    other_wins: int
    other_losses: int
    other_win_rate: float | None


@dataclass(frozen=True)
class IcpShare:
    """The share of new wins inside the ICP: this period against the trailing 12 weeks."""

    period: Rate  # wins inside the ICP / all wins, this period
    trailing: Rate  # the same over the 12 weeks before the period


@dataclass(frozen=True)
class Ranked:
    name: str  # a reason code or a competitor name
    count: int  # this period
    previous: float  # weekly average over the previous four weeks


@dataclass(frozen=True)
class NotableItem:
    label: str  # "Biggest win", "Biggest renewal loss", "Implementation failure in tier A"
    note_id: int
    kind: str
    account: str | None
    tier: str | None
    amount: float | None
    currency: str | None
    permalink: str | None
    text: str
    posted_at: datetime


@dataclass(frozen=True)
class SpotlightItem:
    """An attribute value whose rate differs most from the baseline: material for the ICP refresh."""

    field: str  # "industry", "employees" (banded), "country", any criterion field
    value: str  # "Healthcare", "200–999 employees"
    metric: str  # "win rate" | "renewal-loss rate"
    rate: Rate
    baseline: Rate
    difference: float  # rate.value - baseline.value, in points of 1.0
    # True when the value does better than the baseline (a higher win rate, a lower renewal-loss rate).
    better: bool = False


@dataclass(frozen=True)
class Digest:
    period: Period
    icp_version: str
    tiers: tuple[str, ...]  # the ICP's tier names, best first
    by_tier: tuple[TierStats, ...]  # one per tier (and "unknown" when any outcome lacks a tier)
    weekly: tuple[WeekStats, ...]  # TREND_WEEKS + 1 weeks, oldest first, the period last
    icp_share: IcpShare
    top_loss_reasons: tuple[Ranked, ...]
    top_competitors: tuple[Ranked, ...]
    notable: tuple[NotableItem, ...]
    spotlight: tuple[SpotlightItem, ...]
    outcomes_in_period: int  # after de-duplication
    quiet: bool  # nothing happened in the period
    totals: dict[str, int] = field(default_factory=dict)  # outcomes by kind this period
    merged_from_crm: int = 0  # CRM rows of this period folded into the Slack note of the same deal


# ---------------------------------------------------------------------------------------------
# Periods


def digest_period(as_of: datetime, timezone: str) -> Period:
    """The last full Monday-to-Monday week in `timezone` that ends at or before `as_of`.

    `as_of` must be timezone-aware. Monday 09:00 local gives the week that ended that Monday at
    00:00; so does Monday 00:00 itself (that week is complete at that instant). Weeks are local
    calendar weeks, so a week with a daylight-saving change is 167 or 169 hours long.
    """
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise ValueError("as_of must be timezone-aware")
    local = as_of.astimezone(ZoneInfo(timezone))
    monday = local.date() - timedelta(days=local.weekday())
    return Period(start=monday - timedelta(days=7), end=monday, timezone=timezone)


def local_midnight(day: date, timezone: str) -> datetime:
    """00:00 of `day` in `timezone`, as an aware UTC datetime."""
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def trend_window(period: Period) -> tuple[datetime, datetime]:
    """[start, end) in UTC of the TREND_WEEKS + 1 weeks the digest reads, the period last."""
    first = period.start - timedelta(weeks=TREND_WEEKS)
    return local_midnight(first, period.timezone), local_midnight(period.end, period.timezone)


def week_starts(period: Period) -> list[date]:
    """The local Mondays of the trend weeks, oldest first; the last is the period's."""
    return [period.start - timedelta(weeks=TREND_WEEKS - k) for k in range(TREND_WEEKS + 1)]


def _week_bounds_ns(period: Period) -> np.ndarray[Any, np.dtype[np.int64]]:
    """TREND_WEEKS + 2 instants (ns since the epoch, UTC): the trend weeks' boundaries."""
    mondays = [*week_starts(period), period.end]
    instants = [local_midnight(d, period.timezone) for d in mondays]
    return np.array([int(pd.Timestamp(t).value) for t in instants], dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# Rates


def wilson(numerator: int, denominator: int) -> Rate:
    """numerator / denominator with its Wilson 95% interval; value None when denominator is 0.

    `small_sample` is set below SMALL_SAMPLE (0/0 included): show "n = 7" rather than a bare
    percentage. Raises ValueError for negative counts or a numerator above the denominator.
    """
    numerator, denominator = int(numerator), int(denominator)
    if numerator < 0 or denominator < 0 or numerator > denominator:
        raise ValueError(f"not a rate: {numerator}/{denominator}")
    small = denominator < SMALL_SAMPLE
    if denominator == 0:
        return Rate(0, 0, None, None, None, small)
    n = float(denominator)
    p = numerator / denominator
    z2 = Z * Z
    scale = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / scale
    half = Z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / scale
    low = 0.0 if numerator == 0 else max(0.0, centre - half)  # exact at the ends, not 1e-17 off
    high = 1.0 if numerator == denominator else min(1.0, centre + half)
    return Rate(numerator, denominator, p, low, high, small)


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


# ---------------------------------------------------------------------------------------------
# Input preparation and de-duplication


def _prepare(outcomes: pd.DataFrame) -> pd.DataFrame:
    """A new frame with every column of the docstring, `posted_at` as datetime64[ns, UTC].

    Rows with no outcome kind that are not renewals kept, or with an unknown kind, are dropped:
    they count nowhere.
    """
    missing = [c for c in _REQUIRED if c not in outcomes.columns]
    if missing:
        raise ValueError(f"outcomes lack the column(s) {', '.join(missing)}")
    n = len(outcomes)
    present = [c for c in (*_REQUIRED, *_OPTIONAL) if c in outcomes.columns]
    frame = outcomes[present].reset_index(drop=True)  # a new frame: the caller's is never touched
    for name, default in _OPTIONAL.items():
        if name not in frame.columns:
            frame[name] = _objects(np.full(n, default, dtype=object)) if default is None else default
    reasons = outcomes["reasons"].to_numpy(dtype=object) if "reasons" in outcomes.columns else None
    frame["reasons"] = _objects(_reason_lists(reasons, n))
    frame["posted_at"] = pd.to_datetime(frame["posted_at"], utc=True).astype("datetime64[ns, UTC]")
    if not pd.api.types.is_float_dtype(frame["amount"].dtype):
        frame["amount"] = pd.to_numeric(frame["amount"], errors="coerce").astype(float)
    if not pd.api.types.is_float_dtype(frame["account_id"].dtype):
        frame["account_id"] = pd.to_numeric(frame["account_id"], errors="coerce").astype(float)
    frame["renewal_kept"] = frame["renewal_kept"].fillna(False).astype(bool)
    kind = frame["kind"].to_numpy(dtype=object)
    has_kind = ~pd.isna(kind)
    event = kind.copy()
    event[~has_kind & frame["renewal_kept"].to_numpy()] = RENEWAL_KEPT
    frame["event"] = _objects(event)
    keep = pd.Series(event).isin(_EVENTS).to_numpy()
    return frame if keep.all() else frame.loc[keep].reset_index(drop=True)


def _objects(values: np.ndarray[Any, np.dtype[Any]]) -> pd.Series:
    """An object column as it is: assigning a bare array of text to a frame makes pandas 3 infer
    and convert it to its string dtype, which costs more than anything computed from it here."""
    return pd.Series(values, dtype=object, copy=False)


def _reason_lists(values: np.ndarray[Any, np.dtype[Any]] | None, n: int) -> np.ndarray[Any, np.dtype[Any]]:
    """An object array of lists: None, NaN and other non-lists read as no reasons (lists are
    shared with the input, never modified)."""
    if values is None:
        return np.fromiter(([] for _ in range(n)), dtype=object, count=n)
    lists = (v if isinstance(v, list) else list(v) if isinstance(v, tuple) else [] for v in values)
    return np.fromiter(lists, dtype=object, count=n)


def deduplicate(outcomes: pd.DataFrame) -> pd.DataFrame:
    """Fold each CRM-imported outcome into the captured note of the same deal.

    A pair is a row with `source` "import" and a captured row (`message` or `form`) with the same
    `account_id` (not NaN) and `kind` (not None), posted at most DEDUPE_DAYS apart. Each row is in
    at most one pair: pairs are taken closest first (ties: lower note id, then lower CRM id), the
    greedy one-to-one matching. Two captured notes, or two CRM rows, are never merged.

    The captured row is kept (its id, text, permalink, posted_at) and the CRM row dropped; what the
    note lacks is taken from the CRM row: the amount with its currency (when the note's amount is
    NaN), the competitor, the reasons (when the note has none), the crm_id and the tier. The kept
    row's `merged_id` holds the CRM row's id (NaN elsewhere).

    Returns a new frame in the input's row order, with the columns of the module docstring (missing
    optional ones filled in), `posted_at` as datetime64[ns, UTC] and an `event` column (the kind,
    or "renewal_kept"); rows that are no outcome at all are dropped.
    """
    frame = _prepare(outcomes)
    keep = _merge_pairs(frame)
    return frame if keep.all() else frame.loc[keep].reset_index(drop=True)


def _merge_pairs(frame: pd.DataFrame) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Fill the kept notes of `frame` (prepared; changed in place) from their CRM rows, set
    `merged_id`; returns the rows to keep (False for each CRM row folded into a note)."""
    frame["merged_id"] = math.nan
    keep = np.ones(len(frame), dtype=bool)
    pairs = _pairs(frame)
    if not len(pairs):
        return keep
    notes = pairs["n"].to_numpy()
    crm = pairs["c"].to_numpy()
    amounts = frame["amount"].to_numpy(copy=True)
    currencies = frame["currency"].to_numpy(dtype=object, copy=True)
    take_amount = np.isnan(amounts[notes]) & ~np.isnan(amounts[crm])
    amounts[notes[take_amount]] = amounts[crm[take_amount]]
    currencies[notes[take_amount]] = currencies[crm[take_amount]]
    frame["amount"] = amounts
    frame["currency"] = _objects(currencies)
    for name in ("competitor", "crm_id", "tier"):
        values = frame[name].to_numpy(dtype=object, copy=True)
        fill = pd.isna(values[notes]) & ~pd.isna(values[crm])
        values[notes[fill]] = values[crm[fill]]
        frame[name] = _objects(values)
    reasons = frame["reasons"].to_numpy(dtype=object, copy=True)
    for n_pos, c_pos in zip(notes, crm, strict=True):
        if not reasons[n_pos] and reasons[c_pos]:
            reasons[n_pos] = reasons[c_pos]
    frame["reasons"] = _objects(reasons)
    merged = frame["merged_id"].to_numpy(copy=True)
    merged[notes] = pd.to_numeric(frame["id"]).to_numpy(dtype=float)[crm]
    frame["merged_id"] = merged
    keep[crm] = False
    return keep


def _pairs(frame: pd.DataFrame) -> pd.DataFrame:
    """The chosen (note position `n`, CRM position `c`) pairs of a prepared frame."""
    eligible = frame["kind"].notna() & frame["account_id"].notna()
    source = frame["source"]
    imported = eligible & (source == "import")
    captured = eligible & source.notna() & (source != "import")
    if not imported.any() or not captured.any():
        return pd.DataFrame({"n": np.array([], dtype=np.int64), "c": np.array([], dtype=np.int64)})
    posted = frame["posted_at"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    ids = pd.to_numeric(frame["id"]).to_numpy()
    positions = np.arange(len(frame))

    # One integer per (account, kind): a merge on it is several times faster than on two columns.
    kind_code = pd.factorize(frame["kind"].to_numpy(dtype=object))[0]
    deal = frame["account_id"].to_numpy(dtype=float) * 8 + kind_code

    def side(mask: pd.Series, tag: str) -> pd.DataFrame:
        m = mask.to_numpy()
        return pd.DataFrame({"deal": deal[m], tag: positions[m], f"t_{tag}": posted[m], f"id_{tag}": ids[m]})

    candidates = side(captured, "n").merge(side(imported, "c"), on="deal")
    gap = np.abs(candidates["t_n"].to_numpy() - candidates["t_c"].to_numpy())
    candidates = candidates.assign(gap=gap)
    candidates = candidates.loc[gap <= DEDUPE_DAYS * 86_400 * 10**9]
    candidates = candidates.sort_values(["gap", "id_n", "id_c"], kind="stable")[["n", "c"]]
    # Greedy one-to-one matching, a round at a time: a pair that is the closest for both its note
    # and its CRM row is exactly the pair the greedy pass would take; drop their rivals, repeat.
    chosen: list[pd.DataFrame] = [candidates.iloc[0:0]]
    while len(candidates):
        mutual = ~candidates["n"].duplicated() & ~candidates["c"].duplicated()
        taken = candidates.loc[mutual]
        chosen.append(taken)
        candidates = candidates.loc[~candidates["n"].isin(taken["n"]) & ~candidates["c"].isin(taken["c"])]
    return pd.concat(chosen, ignore_index=True)


# ---------------------------------------------------------------------------------------------
# The digest


def compute_digest(
    outcomes: pd.DataFrame,
    accounts: pd.DataFrame,
    *,
    icp: ICPDefinition,
    as_of: datetime,
    timezone: str,
) -> Digest:
    """Every number of the digest for the last full week before `as_of` in `timezone`.

    `outcomes` and `accounts` are described in the module docstring (neither is modified); only
    outcomes posted in the TREND_WEEKS + 1 weeks ending with the period are read, after
    de-duplication (rows a few days outside may be passed: they pair with CRM rows and are then
    left out). `accounts` feeds the attribute spotlight only; an outcome whose account is not in it
    (deleted, or none) counts everywhere else under its own `tier`.

    Week k of the trend runs from local Monday 00:00 to the next (`week_starts`); an outcome
    belongs to the week its `posted_at` falls in. No outcomes at all give a quiet digest with every
    count 0 and every rate None.
    """
    period = digest_period(as_of, timezone)
    tier_names = tuple(icp.tiers)
    prepared = _prepare(outcomes)
    keep = _merge_pairs(prepared)
    posted = prepared["posted_at"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    week = np.searchsorted(_week_bounds_ns(period), posted, side="right") - 1
    keep &= (week >= 0) & (week <= TREND_WEEKS)
    tier = prepared["tier"].to_numpy(dtype=object)[keep]
    tier_name = np.where(pd.isna(tier), UNKNOWN_TIER, tier)
    # The columns every count reads, for the trend window only; the period's rows in full.
    core = pd.DataFrame(
        {
            "event": prepared["event"].to_numpy(dtype=object)[keep],
            "week": week[keep],
            "tier_name": tier_name,
            "inside": pd.Series(tier_name).isin(set(icp.icp_tiers)).to_numpy(),
            "account_id": prepared["account_id"].to_numpy()[keep],
            "amount": prepared["amount"].to_numpy()[keep],
        }
    )
    in_period = core["week"].to_numpy() == TREND_WEEKS
    current = prepared.iloc[_positions(keep, in_period)]
    current = current.assign(tier_name=tier_name[in_period])
    recent = core["week"].to_numpy() >= TREND_WEEKS - PREVIOUS_WEEKS
    lost = core["event"].isin(("loss", "renewal_loss")).to_numpy() & recent
    losses = (
        prepared[["reasons", "competitor"]]
        .iloc[_positions(keep, lost)]
        .assign(week=core["week"].to_numpy()[lost])
    )
    seen = current["event"].value_counts()
    totals = {event: int(seen.get(event, 0)) for event in _EVENTS}
    outcomes_in_period = len(current)
    return Digest(
        period=period,
        icp_version=icp.version,
        tiers=tier_names,
        by_tier=_by_tier(current, tier_names),
        weekly=_weekly(core, period),
        icp_share=_icp_share(core),
        top_loss_reasons=_top_reasons(losses),
        top_competitors=_top_competitors(losses),
        notable=_notable(current, tier_names[0]),
        spotlight=_spotlight(core, accounts, icp),
        outcomes_in_period=outcomes_in_period,
        quiet=outcomes_in_period == 0,
        totals=totals,
        merged_from_crm=int(current["merged_id"].notna().sum()),
    )


def _positions(keep: np.ndarray[Any, np.dtype[np.bool_]], mask: np.ndarray[Any, np.dtype[np.bool_]]) -> Any:
    """Row positions of the prepared frame: those kept (`keep`) and, among them, in `mask`."""
    return np.flatnonzero(keep)[mask]


def _counts(frame: pd.DataFrame, by: str) -> pd.DataFrame:
    """Rows: the values of `by`; columns: every event; cells: how many outcomes."""
    table = frame.groupby([by, "event"], sort=False).size().unstack("event", fill_value=0)
    return table.reindex(columns=list(_EVENTS), fill_value=0).astype(np.int64)


def _by_tier(current: pd.DataFrame, tier_names: Sequence[str]) -> tuple[TierStats, ...]:
    """One TierStats per ICP tier, then tiers not in the ICP (by name), then "unknown" if any."""
    counts = _counts(current, "tier_name")
    present = [str(t) for t in counts.index]
    extra = sorted(t for t in present if t not in tier_names and t != UNKNOWN_TIER)
    order = [*tier_names, *extra, *([UNKNOWN_TIER] if UNKNOWN_TIER in present else [])]
    table = counts.reindex(order, fill_value=0).to_numpy(dtype=np.int64)
    column = {event: i for i, event in enumerate(_EVENTS)}
    renewal = current.loc[(current["event"] == "renewal_loss") & current["amount"].notna()]
    arr = renewal.groupby("tier_name")["amount"].sum()
    covered = renewal.groupby("tier_name").size()
    currencies = {
        str(tier): _currency_of(values)
        for tier, values in renewal.groupby("tier_name")["currency"].agg(list).items()
    }
    out = []
    for i, tier in enumerate(order):
        row = table[i]
        wins, losses = int(row[column["win"]]), int(row[column["loss"]])
        known = int(covered.get(tier, 0))
        out.append(
            TierStats(
                tier=tier,
                wins=wins,
                losses=losses,
                win_rate=wilson(wins, wins + losses),
                renewal_losses=int(row[column["renewal_loss"]]),
                renewal_loss_arr=float(arr[tier]) if known else None,
                renewals_kept=int(row[column[RENEWAL_KEPT]]),
                implementation_failures=int(row[column["implementation_failure"]]),
                customer_wins=int(row[column["customer_win"]]),
                renewal_loss_currency=currencies.get(tier) if known else None,
                renewal_losses_with_amount=known,
            )
        )
    return tuple(out)


def _currency_of(values: Iterable[Any]) -> str | None:
    codes = {str(v) for v in values if isinstance(v, str) and v}
    if not codes:
        return None
    return codes.pop() if len(codes) == 1 else "mixed"


def _weekly(frame: pd.DataFrame, period: Period) -> tuple[WeekStats, ...]:
    closed = frame.loc[frame["event"].isin(("win", "loss"))]
    table = (
        closed.groupby(["week", "inside", "event"])
        .size()
        .reindex(
            pd.MultiIndex.from_product(
                [range(TREND_WEEKS + 1), [True, False], ["win", "loss"]], names=["week", "inside", "event"]
            ),
            fill_value=0,
        )
    )
    counts = table.to_numpy(dtype=np.int64).reshape(TREND_WEEKS + 1, 2, 2)  # week, inside?, win/loss
    out = []
    for k, monday in enumerate(week_starts(period)):
        icp_wins, icp_losses = int(counts[k, 0, 0]), int(counts[k, 0, 1])
        other_wins, other_losses = int(counts[k, 1, 0]), int(counts[k, 1, 1])
        wins, losses = icp_wins + other_wins, icp_losses + other_losses
        out.append(
            WeekStats(
                week_start=monday,
                wins=wins,
                losses=losses,
                win_rate=_ratio(wins, wins + losses),
                icp_wins=icp_wins,
                icp_losses=icp_losses,
                icp_win_rate=_ratio(icp_wins, icp_wins + icp_losses),
                other_wins=other_wins,
                other_losses=other_losses,
                other_win_rate=_ratio(other_wins, other_wins + other_losses),
            )
        )
    return tuple(out)


def _icp_share(frame: pd.DataFrame) -> IcpShare:
    """Wins inside the ICP / all wins: the period, and the 12 weeks before it pooled."""
    wins = frame.loc[frame["event"] == "win"]
    current = wins["week"] == TREND_WEEKS
    return IcpShare(
        period=wilson(int(wins.loc[current, "inside"].sum()), int(current.sum())),
        trailing=wilson(int(wins.loc[~current, "inside"].sum()), int((~current).sum())),
    )


def _rank(names: pd.Series, weeks: pd.Series) -> tuple[Ranked, ...]:
    """Counts this period against the weekly average of the previous weeks; top TOP_RANKED by
    this period's count (ties by name). Only names seen this period are ranked."""
    current = weeks == TREND_WEEKS
    now = names.loc[current].value_counts()
    before = names.loc[~current].value_counts()
    if now.empty:
        return ()
    ranked = sorted(((int(c), str(name)) for name, c in now.items()), key=lambda x: (-x[0], x[1]))
    return tuple(
        Ranked(name, count, float(before.get(name, 0)) / PREVIOUS_WEEKS)
        for count, name in ranked[:TOP_RANKED]
    )


def _top_reasons(losses: pd.DataFrame) -> tuple[Ranked, ...]:
    """Reason codes of losses and renewal losses (`losses`: reasons, competitor and week of those
    of the period and the PREVIOUS_WEEKS before it); a code counts once per note."""
    recent = losses[["reasons", "week"]]
    recent = recent.assign(row=np.arange(len(recent))).explode("reasons")
    recent = recent.loc[recent["reasons"].notna() & (recent["reasons"].astype(str).str.strip() != "")]
    recent = recent.drop_duplicates(["row", "reasons"])
    return _rank(recent["reasons"].astype(str), recent["week"])


def _top_competitors(losses: pd.DataFrame) -> tuple[Ranked, ...]:
    """Competitors named on losses and renewal losses, as written (blank ones skipped)."""
    recent = losses
    named = recent["competitor"].notna()
    names = recent.loc[named, "competitor"].astype(str).str.strip()
    weeks = recent.loc[named, "week"]
    keep = names != ""
    return _rank(names.loc[keep], weeks.loc[keep])


def _notable(current: pd.DataFrame, top_tier: str) -> tuple[NotableItem, ...]:
    """The biggest win and the biggest renewal loss by amount (ties: earliest, then lowest id),
    then every implementation failure in the top tier, oldest first. No amount, no "biggest"."""
    items: list[NotableItem] = []
    ordered = current.sort_values(["posted_at", "id"], kind="stable")
    for kind, label in (("win", "Biggest win"), ("renewal_loss", "Biggest renewal loss")):
        rows = ordered.loc[(ordered["event"] == kind) & ordered["amount"].notna()]
        if len(rows):
            best = rows["amount"].to_numpy().argmax()  # the first of equal maxima: the earliest
            items.append(_item(label, rows.iloc[int(best)]))
    failures = ordered.loc[
        (ordered["event"] == "implementation_failure") & (ordered["tier_name"] == top_tier)
    ]
    items += [_item(f"Implementation failure in tier {top_tier}", row) for _, row in failures.iterrows()]
    return tuple(items)


def _text(value: Any) -> str | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def _item(label: str, row: pd.Series) -> NotableItem:
    amount = float(row["amount"])
    posted: pd.Timestamp = row["posted_at"]
    return NotableItem(
        label=label,
        note_id=int(row["id"]),
        kind=str(row["event"]),
        account=_text(row["account"]),
        tier=_text(row["tier"]),
        amount=None if math.isnan(amount) else amount,
        currency=_text(row["currency"]),
        permalink=_text(row["permalink"]),
        text=_text(row["text"]) or "",
        posted_at=posted.to_pydatetime(),
    )


# ---------------------------------------------------------------------------------------------
# Attribute spotlight


Labels = tuple[np.ndarray[Any, np.dtype[np.int64]], np.ndarray[Any, np.dtype[Any]]]


def _numbers(values: np.ndarray[Any, np.dtype[Any]]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Values as floats: NaN for missing, infinite or non-numeric ones."""
    numbers = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(dtype=float, copy=True)
    numbers[~np.isfinite(numbers)] = np.nan
    return numbers


def _bands(
    values: np.ndarray[Any, np.dtype[Any]], bands: Sequence[tuple[float, str]]
) -> np.ndarray[Any, np.dtype[Any]]:
    """The band label of each value (None when missing or negative); band i holds values below
    its upper bound and at or above the previous one."""
    numbers = _numbers(values)
    known = ~np.isnan(numbers) & (numbers >= 0)
    uppers = np.array([upper for upper, _ in bands], dtype=float)
    labels = np.array([label for _, label in bands], dtype=object)
    out = np.full(len(values), None, dtype=object)
    out[known] = labels[np.searchsorted(uppers, numbers[known], side="right")]
    return out


def _threshold_bands(
    values: np.ndarray[Any, np.dtype[Any]], operator: str, operand: Any
) -> np.ndarray[Any, np.dtype[Any]]:
    """A numeric criterion field split at the criterion's own bounds ("below 20M", "20M or more")."""
    numbers = _numbers(values)
    known = ~np.isnan(numbers)
    out = np.full(len(values), None, dtype=object)
    if operator == "between":
        lo, hi = (float(v) for v in operand)
        shown_lo, shown_hi = format_number(lo), format_number(hi)
        out[known & (numbers < lo)] = f"below {shown_lo}"
        out[known & (numbers >= lo) & (numbers <= hi)] = f"{shown_lo}–{shown_hi}"
        out[known & (numbers > hi)] = f"above {shown_hi}"
        return out
    limit = float(operand)
    shown = format_number(limit)
    if operator in ("at_least", "below"):
        out[known & (numbers < limit)] = f"below {shown}"
        out[known & (numbers >= limit)] = f"{shown} or more"
    else:  # at_most, above
        out[known & (numbers <= limit)] = f"{shown} or less"
        out[known & (numbers > limit)] = f"above {shown}"
    return out


def _shown(value: Any) -> str | None:
    """A field value as spotlight text (numbers as in fit details); None when missing or blank."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, list | tuple):
        text = "; ".join(str(v) for v in value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        text = format_number(float(value))
    else:
        text = str(value)
    return text.strip() or None


def _text_values(values: np.ndarray[Any, np.dtype[Any]]) -> np.ndarray[Any, np.dtype[Any]]:
    """Text values grouped case-insensitively, each shown in its most frequent spelling (ties:
    the first in code-point order); None for missing or blank values."""
    try:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        distinct = uniques.tolist()
    except TypeError:  # unhashable values (lists): as text first
        codes, uniques = pd.factorize(np.array([_shown(v) for v in values], dtype=object))
        distinct = uniques.tolist()
    counts = np.bincount(codes[codes >= 0], minlength=len(distinct))
    shown = [_shown(v) for v in distinct]
    spellings: dict[str, dict[str, int]] = {}
    for text, count in zip(shown, counts.tolist(), strict=True):
        if text is not None:
            spelled = spellings.setdefault(text.casefold(), {})
            spelled[text] = spelled.get(text, 0) + count
    best = {
        key: min(spelled.items(), key=lambda item: (-item[1], item[0]))[0]
        for key, spelled in spellings.items()
    }
    labels = np.array([*(None if t is None else best[t.casefold()] for t in shown), None], dtype=object)
    return labels[codes]  # code -1 (missing) reads the last entry


def _attribute_values(accounts: pd.DataFrame, icp: ICPDefinition) -> list[tuple[str, Labels]]:
    """(field, (account row positions, labels)) for each spotlight field the accounts frame has;
    accounts without a value for the field are left out.

    industry, country and any text criterion field: the text value; employees: EMPLOYEE_BANDS;
    annual_revenue: REVENUE_BANDS; another numeric criterion field: split at the criterion's
    bounds; a `contains` criterion field: one value per list item (an account can have several).
    """
    criteria: dict[str, Criterion] = {}
    for criterion in icp.criteria:
        criteria.setdefault(criterion.field, criterion)
    names = list(dict.fromkeys([*SPOTLIGHT_FIELDS, *criteria]))
    rows = np.arange(len(accounts), dtype=np.int64)
    out: list[tuple[str, Labels]] = []
    for name in names:
        if name not in accounts.columns:
            continue
        column = accounts[name].to_numpy(dtype=object)
        positions = rows
        rule = criteria.get(name)
        if name == "employees":
            labels = _bands(column, EMPLOYEE_BANDS)
        elif name == "annual_revenue":
            labels = _bands(column, REVENUE_BANDS)
        elif rule is not None and rule.operator in NUMERIC_OPERATORS:
            labels = _threshold_bands(column, rule.operator, rule.operand)
        elif rule is not None and rule.operator == "contains":
            items = [
                [str(x) for x in v] if isinstance(v, list) else split_list(v) if isinstance(v, str) else []
                for v in column
            ]
            positions = np.repeat(rows, [len(i) for i in items])
            flat = np.empty(int(positions.size), dtype=object)
            flat[:] = [x for i in items for x in i]
            labels = _text_values(flat)
        else:
            labels = _text_values(column)
        known = ~pd.isna(labels)
        out.append((name, (positions[known], labels[known])))
    return out


def _spotlight(core: pd.DataFrame, accounts: pd.DataFrame, icp: ICPDefinition) -> tuple[SpotlightItem, ...]:
    """Attribute values whose 13-week win rate or renewal-loss rate differs most from the baseline.

    Win rate = wins / (wins + losses); renewal-loss rate = renewal losses / (renewal losses +
    renewals kept). The baseline is the same rate over every outcome of the 13 weeks (accounts
    known or not). A value counts the outcomes of the accounts that have it (accounts in the
    `accounts` frame); it is compared only with at least SPOTLIGHT_MIN_N closed deals (renewals)
    and a baseline; the SPOTLIGHT_EACH values doing better than the baseline by the largest
    difference come first, then the SPOTLIGHT_EACH doing worse (ties: larger n, field, value).
    """
    if accounts is None or accounts.empty or "id" not in accounts.columns or core.empty:
        return ()
    events = core["event"].to_numpy(dtype=object)
    metrics = (
        ("win rate", "win", "loss", True),
        ("renewal-loss rate", "renewal_loss", RENEWAL_KEPT, False),
    )
    baselines = {metric: wilson(int((events == hit).sum()), int(np.isin(events, (hit, miss)).sum()))
                 for metric, hit, miss, _ in metrics}  # fmt: skip
    accounts = accounts.drop_duplicates("id")
    index = pd.Index(pd.to_numeric(accounts["id"]).to_numpy(dtype=float))
    position = index.get_indexer(core["account_id"].to_numpy(dtype=float))  # -1: no known account
    per_account = {
        event: np.bincount(position[(position >= 0) & (events == event)], minlength=len(accounts))
        for event in ("win", "loss", "renewal_loss", RENEWAL_KEPT)
    }
    candidates: list[tuple[float, int, str, str, str, int, bool]] = []
    for name, (positions, labels) in _attribute_values(accounts, icp):
        codes, values = pd.factorize(labels)
        sums = {
            event: np.bincount(codes, weights=counts[positions], minlength=len(values)).astype(np.int64)
            for event, counts in per_account.items()
        }
        for metric, hit, miss, higher_is_better in metrics:
            baseline = baselines[metric].value
            if baseline is None:
                continue
            hits, n = sums[hit], sums[hit] + sums[miss]
            for k in np.flatnonzero(n >= SPOTLIGHT_MIN_N):
                difference = int(hits[k]) / int(n[k]) - baseline
                if difference != 0:
                    better = (difference > 0) == higher_is_better
                    candidates.append(
                        (difference, int(n[k]), name, str(values[k]), metric, int(hits[k]), better)
                    )
    out: list[SpotlightItem] = []
    for side in (True, False):
        chosen = sorted(
            (c for c in candidates if c[6] is side), key=lambda c: (-abs(c[0]), -c[1], c[2], c[3], c[4])
        )
        out += [
            SpotlightItem(
                field=name,
                value=value,
                metric=metric,
                rate=wilson(hits, n),
                baseline=baselines[metric],
                difference=difference,
                better=side,
            )
            for difference, n, name, value, metric, hits, _ in chosen[:SPOTLIGHT_EACH]
        ]
    return tuple(out)
