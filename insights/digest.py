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
`accounts`, one row per account: id: int, tier: str (today's tier), and every field criteria
    can name (industry, employees, annual_revenue, country, state, type, owner, arr, extras).

Definitions (../shared/DOMAIN.md):
- periods are weeks Monday 00:00 to Monday 00:00 in the configured timezone; the digest period is
  the last full week before `as_of`; the trend covers it and the 12 weeks before it;
- win rate = wins / (wins + losses); None when both are 0; `small_sample` below 10 closed deals;
- inside the ICP = the top two tiers of the ICP definition;
- a captured note and a CRM-imported outcome of the same deal (same account and kind, within
  DEDUPE_DAYS) count once; the Slack note is kept as the evidence (its permalink).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

DEDUPE_DAYS = 5
SMALL_SAMPLE = 10  # closed deals below which a rate is flagged, never shown as a bare percentage
TREND_WEEKS = 12
SPOTLIGHT_MIN_N = 8  # closed deals (or renewals) an attribute value needs before it is compared


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
