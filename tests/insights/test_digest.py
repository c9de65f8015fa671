"""The digest's numbers (insights.digest), on literal DataFrames: periods across DST, rates, dedupe."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from insights.config import ICPDefinition
from insights.digest import (
    SPOTLIGHT_MIN_N,
    Period,
    compute_digest,
    deduplicate,
    digest_period,
    local_midnight,
    trend_window,
    week_starts,
    wilson,
)

NY, HELSINKI = ZoneInfo("America/New_York"), ZoneInfo("Europe/Helsinki")
ICP = ICPDefinition.model_validate(
    {
        "version": "2026-Q4",
        "criteria": [
            {"name": "Industry", "field": "industry", "any_of": ["Software", "Healthcare"], "weight": 40},
            {"name": "Company size", "field": "employees", "between": [200, 5000], "weight": 40},
            {"name": "Region", "field": "country", "any_of": ["United States", "Finland"], "weight": 20},
        ],
        "tiers": {"A": 80, "B": 60, "C": 40, "D": 0},
    }
)
# Monday 2026-11-23 09:00 in New York: the digest of the week of November 16.
AS_OF = datetime(2026, 11, 23, 9, 0, tzinfo=NY)
PERIOD_DAY = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)  # a Wednesday inside that week
COLUMNS = ("id", "kind", "renewal_kept", "account_id", "account", "tier", "posted_at", "amount", "currency",
           "reasons", "competitor", "permalink", "text", "source", "crm_id")  # fmt: skip


def note(id: int, kind: str | None, **values: Any) -> dict[str, Any]:
    """One outcome row with the docstring's columns; a captured Slack message unless told."""
    row: dict[str, Any] = {
        "id": id,
        "kind": kind,
        "renewal_kept": False,
        "account_id": 1.0,
        "account": "Acme",
        "tier": "A",
        "posted_at": PERIOD_DAY,
        "amount": math.nan,
        "currency": None,
        "reasons": [],
        "competitor": None,
        "permalink": f"https://example.slack.com/archives/C0DEALS/p{id}",
        "text": f"note {id}",
        "source": "message",
        "crm_id": None,
    }
    row.update(values)
    return row


def frame(*rows: dict[str, Any]) -> pd.DataFrame:
    data = pd.DataFrame(list(rows), columns=list(COLUMNS))
    data["posted_at"] = pd.to_datetime(data["posted_at"], utc=True)
    return data


ACCOUNTS = pd.DataFrame(
    {
        "id": [1, 2, 3],
        "tier": ["A", "B", "D"],
        "industry": ["Software", "Healthcare", "Retail"],
        "employees": [850.0, 250.0, 40.0],
        "country": ["United States", "Finland", "Germany"],
    }
)


def digest_of(*rows: dict[str, Any], accounts: pd.DataFrame = ACCOUNTS, **kwargs: Any) -> Any:
    return compute_digest(frame(*rows), accounts, icp=ICP, as_of=AS_OF, timezone="America/New_York", **kwargs)


# --- periods ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("as_of", "start"),
    [
        (datetime(2026, 11, 23, 9, 0, tzinfo=NY), date(2026, 11, 16)),  # Monday 09:00: the week just ended
        (datetime(2026, 11, 23, 0, 0, tzinfo=NY), date(2026, 11, 16)),  # Monday 00:00: that week is complete
        (datetime(2026, 11, 22, 23, 59, tzinfo=NY), date(2026, 11, 9)),  # Sunday night: still the week before
        (datetime(2026, 11, 27, 12, 0, tzinfo=NY), date(2026, 11, 16)),  # later in the week
        # 03:00 UTC on Monday is still Sunday evening in New York.
        (datetime(2026, 11, 23, 3, 0, tzinfo=UTC), date(2026, 11, 9)),
    ],
)
def test_the_period_is_the_last_full_local_week_before_as_of(as_of: datetime, start: date) -> None:
    period = digest_period(as_of, "America/New_York")
    assert period == Period(start, start + timedelta(days=7), "America/New_York")
    assert period.start.weekday() == 0


def test_as_of_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        digest_period(datetime(2026, 11, 23, 9, 0), "UTC")


@pytest.mark.parametrize(
    ("zone", "monday_after", "hours"),
    [
        ("America/New_York", date(2026, 3, 9), 167),  # clocks forward on Sunday 2026-03-08
        ("America/New_York", date(2026, 11, 2), 169),  # back on Sunday 2026-11-01
        ("Europe/Helsinki", date(2026, 3, 30), 167),  # forward on Sunday 2026-03-29
        ("Europe/Helsinki", date(2026, 10, 26), 169),  # back on Sunday 2026-10-25
    ],
)
def test_a_week_with_a_clock_change_runs_from_local_midnight_to_local_midnight(
    zone: str, monday_after: date, hours: int
) -> None:
    tz = ZoneInfo(zone)
    as_of = datetime.combine(monday_after, datetime.min.time(), tzinfo=tz).replace(hour=9)
    period = digest_period(as_of, zone)
    assert (period.start, period.end) == (monday_after - timedelta(days=7), monday_after)
    start, end = local_midnight(period.start, zone), local_midnight(period.end, zone)
    assert (end - start) == timedelta(hours=hours)
    assert start.astimezone(tz).hour == 0 and end.astimezone(tz).hour == 0
    assert trend_window(period) == (local_midnight(period.start - timedelta(weeks=12), zone), end)

    # Half an hour either side of each boundary lands in the right week; with a fixed UTC offset
    # one of them would fall an hour into the neighbouring week.
    icp_rows = [
        note(1, "win", posted_at=start - timedelta(minutes=30)),  # Sunday 23:30 of the week before
        note(2, "win", posted_at=start + timedelta(minutes=30)),  # Monday 00:30: this week
        note(3, "loss", posted_at=end - timedelta(minutes=30)),  # Sunday 23:30: this week
        note(4, "loss", posted_at=end + timedelta(minutes=30)),  # Monday 00:30: after the period
    ]
    digest = compute_digest(frame(*icp_rows), ACCOUNTS, icp=ICP, as_of=as_of, timezone=zone)
    this_week, week_before = digest.weekly[-1], digest.weekly[-2]
    assert (this_week.week_start, this_week.wins, this_week.losses) == (period.start, 1, 1)
    assert (week_before.wins, week_before.losses) == (1, 0)
    assert digest.outcomes_in_period == 2


def test_the_trend_is_thirteen_weeks_oldest_first() -> None:
    period = digest_period(AS_OF, "America/New_York")
    starts = week_starts(period)
    assert len(starts) == 13 and starts[-1] == period.start and starts[0] == date(2026, 8, 24)
    digest = digest_of()
    assert [w.week_start for w in digest.weekly] == starts


# --- rates --------------------------------------------------------------------------------------


def test_wilson_interval_and_small_samples() -> None:
    empty = wilson(0, 0)
    assert (empty.value, empty.low, empty.high, empty.small_sample) == (None, None, None, True)
    half = wilson(5, 10)
    assert half.value == 0.5 and not half.small_sample
    assert half.low == pytest.approx(0.2366, abs=1e-4) and half.high == pytest.approx(0.7634, abs=1e-4)
    assert wilson(9, 9).small_sample and wilson(9, 9).high == 1.0
    assert wilson(0, 12).low == 0.0 and wilson(0, 12).value == 0.0
    with pytest.raises(ValueError):
        wilson(3, 2)


def test_win_rate_is_none_without_closed_deals_and_small_samples_are_flagged() -> None:
    rows = [note(i, "win", tier="A") for i in range(1, 4)] + [note(10, "customer_win", tier="B")]
    digest = digest_of(*rows)
    by_tier = {t.tier: t for t in digest.by_tier}
    assert [t.tier for t in digest.by_tier] == ["A", "B", "C", "D"]  # no "unknown" when not needed
    assert by_tier["A"].win_rate.value == 1.0 and by_tier["A"].win_rate.small_sample
    assert by_tier["B"].win_rate.value is None and by_tier["B"].win_rate.denominator == 0
    assert by_tier["B"].customer_wins == 1
    assert digest.weekly[0].win_rate is None and digest.weekly[-1].win_rate == 1.0
    assert digest.weekly[-1].other_win_rate is None

    many = [note(i, "win" if i % 2 else "loss", tier="A") for i in range(1, 13)]
    a = digest_of(*many).by_tier[0]
    assert (a.wins, a.losses, a.win_rate.denominator, a.win_rate.small_sample) == (6, 6, 12, False)


# --- counting -----------------------------------------------------------------------------------


def test_outcomes_by_tier_inside_and_outside_the_icp() -> None:
    rows = [
        note(1, "win", tier="A"),
        note(2, "win", tier="B", account_id=2.0),
        note(3, "win", tier="C", account_id=3.0),
        note(4, "loss", tier="D", account_id=3.0),
        note(5, "win", tier=None, account_id=math.nan, account="Prospect"),
        note(6, "renewal_loss", tier="A", amount=120_000.0, currency="USD"),
        note(7, "renewal_loss", tier="A", amount=30_000.0, currency="USD"),
        note(8, "renewal_loss", tier="A"),
        note(9, "renewal_loss", tier="B", amount=10.0, currency="EUR"),
        note(10, "renewal_loss", tier="B", amount=20.0, currency="USD"),
        note(11, None, renewal_kept=True, tier="A", source="import", crm_id="006A"),
        note(12, "implementation_failure", tier="A"),
        note(13, "customer_win", tier="C"),
        note(14, None, tier="A"),  # no kind and not a renewal kept: counts nowhere
    ]
    digest = digest_of(*rows)
    by_tier = {t.tier: t for t in digest.by_tier}
    assert [t.tier for t in digest.by_tier] == ["A", "B", "C", "D", "unknown"]
    a = by_tier["A"]
    assert (a.wins, a.losses, a.renewal_losses, a.renewals_kept, a.implementation_failures) == (1, 0, 3, 1, 1)
    assert (a.renewal_loss_arr, a.renewal_loss_currency, a.renewal_losses_with_amount) == (
        150_000.0,
        "USD",
        2,
    )
    assert (by_tier["B"].renewal_loss_arr, by_tier["B"].renewal_loss_currency) == (30.0, "mixed")
    assert by_tier["C"].renewal_loss_arr is None and by_tier["C"].customer_wins == 1
    assert (by_tier["unknown"].wins, by_tier["D"].losses) == (1, 1)
    week = digest.weekly[-1]
    assert (week.icp_wins, week.icp_losses, week.other_wins, week.other_losses) == (2, 0, 2, 1)
    assert digest.icp_share.period.numerator == 2 and digest.icp_share.period.denominator == 4
    assert digest.totals == {"win": 4, "loss": 1, "renewal_loss": 5, "implementation_failure": 1,
                             "customer_win": 1, "renewal_kept": 1}  # fmt: skip
    assert digest.outcomes_in_period == 13 and not digest.quiet


def test_a_note_whose_account_was_deleted_counts_under_its_stored_tier() -> None:
    orphan = note(1, "win", account_id=math.nan, account="Gone Corp", tier="B")
    digest = digest_of(orphan)
    assert {t.tier: t.wins for t in digest.by_tier}["B"] == 1
    assert digest.weekly[-1].icp_wins == 1


def test_tiers_from_an_older_icp_are_listed_after_the_current_ones() -> None:
    digest = digest_of(note(1, "win", tier="Gold"), note(2, "loss", tier=None))
    assert [t.tier for t in digest.by_tier] == ["A", "B", "C", "D", "Gold", "unknown"]


def test_icp_share_of_wins_this_period_against_the_trailing_weeks() -> None:
    earlier = [note(i, "win", tier="A" if i <= 3 else "D", posted_at=PERIOD_DAY - timedelta(weeks=i))
               for i in range(1, 13)]  # fmt: skip
    now = [note(20, "win", tier="B"), note(21, "win", tier="C")]
    share = digest_of(*earlier, *now).icp_share
    assert (share.period.numerator, share.period.denominator, share.period.value) == (1, 2, 0.5)
    assert (share.trailing.numerator, share.trailing.denominator) == (3, 12)
    assert share.period.small_sample


def test_quiet_week_and_no_outcomes_at_all() -> None:
    old = note(1, "win", posted_at=PERIOD_DAY - timedelta(weeks=3))
    quiet = digest_of(old)
    assert quiet.quiet and quiet.outcomes_in_period == 0 and set(quiet.totals.values()) == {0}
    assert quiet.notable == () and quiet.top_loss_reasons == () and quiet.weekly[-4].wins == 1

    nothing = compute_digest(frame(), ACCOUNTS.iloc[0:0], icp=ICP, as_of=AS_OF, timezone="America/New_York")
    assert nothing.quiet and nothing.spotlight == () and len(nothing.weekly) == 13
    assert all(t.win_rate.value is None for t in nothing.by_tier)
    assert nothing.icp_share.period.value is None and nothing.icp_share.trailing.value is None


def test_outcomes_outside_the_window_are_ignored() -> None:
    digest = digest_of(
        note(1, "win", posted_at=PERIOD_DAY - timedelta(weeks=13)),
        note(2, "win", posted_at=PERIOD_DAY + timedelta(weeks=1)),
    )
    assert sum(w.wins for w in digest.weekly) == 0 and digest.quiet


def test_top_loss_reasons_and_competitors_against_the_previous_four_weeks() -> None:
    rows = [
        note(1, "loss", reasons=["price", "price", "timing"], competitor="Gong"),  # a code counts once
        note(2, "loss", reasons=["price"], competitor="Gong"),
        note(3, "renewal_loss", reasons=["adoption"], competitor="Gainsight"),
        note(4, "win", reasons=["product_gap"], competitor="Clari"),  # wins: no loss reason
        note(5, "loss", reasons=["price"], competitor="Gong", posted_at=PERIOD_DAY - timedelta(weeks=2)),
        note(6, "loss", reasons=["budget"], competitor="Clari", posted_at=PERIOD_DAY - timedelta(weeks=4)),
        note(7, "loss", reasons=["budget"], posted_at=PERIOD_DAY - timedelta(weeks=5)),  # too early
        note(8, "loss", competitor="  "),
    ]
    digest = digest_of(*rows)
    assert [(r.name, r.count, r.previous) for r in digest.top_loss_reasons] == [
        ("price", 2, 0.25),
        ("adoption", 1, 0.0),
        ("timing", 1, 0.0),
    ]
    assert [(r.name, r.count, r.previous) for r in digest.top_competitors] == [
        ("Gong", 2, 0.25),
        ("Gainsight", 1, 0.0),
    ]


def test_at_most_five_reasons() -> None:
    reasons = ["a", "b", "c", "d", "e", "f"]
    digest = digest_of(*[note(i, "loss", reasons=reasons[: i + 1]) for i in range(6)])
    assert [r.name for r in digest.top_loss_reasons] == ["a", "b", "c", "d", "e"]


def test_notable_items() -> None:
    rows = [
        note(1, "win", amount=50_000.0, currency="USD", posted_at=PERIOD_DAY),
        note(2, "win", amount=90_000.0, currency="USD", posted_at=PERIOD_DAY + timedelta(hours=1)),
        note(3, "win", amount=90_000.0, currency="USD", posted_at=PERIOD_DAY + timedelta(hours=2)),
        note(4, "customer_win", amount=900_000.0, currency="USD"),  # an upsell is not a new win
        note(5, "renewal_loss", tier="C", amount=10_000.0, currency="EUR"),
        note(6, "implementation_failure", tier="A", posted_at=PERIOD_DAY + timedelta(hours=3)),
        note(7, "implementation_failure", tier="B"),
        note(8, "implementation_failure", tier="A", posted_at=PERIOD_DAY - timedelta(hours=3)),
        note(9, "win", amount=1e9, posted_at=PERIOD_DAY - timedelta(weeks=1)),  # not this period
    ]
    notable = digest_of(*rows).notable
    assert [(n.label, n.note_id) for n in notable] == [
        ("Biggest win", 2),  # the earlier of two equal amounts
        ("Biggest renewal loss", 5),
        ("Implementation failure in tier A", 8),
        ("Implementation failure in tier A", 6),
    ]
    win = notable[0]
    assert (win.kind, win.amount, win.currency, win.tier, win.account) == (
        "win",
        90_000.0,
        "USD",
        "A",
        "Acme",
    )
    assert win.permalink == "https://example.slack.com/archives/C0DEALS/p2" and win.text == "note 2"
    assert win.posted_at == PERIOD_DAY + timedelta(hours=1)
    assert digest_of(note(1, "win"), note(2, "renewal_loss")).notable == ()  # no amount, no "biggest"


# --- de-duplication -----------------------------------------------------------------------------


def test_a_crm_outcome_and_the_slack_note_of_the_same_deal_count_once() -> None:
    slack = note(1, "win", competitor=None)
    crm = note(2, "win", source="import", permalink=None, text="Acme - Renewal", crm_id="006X",
               amount=75_000.0, currency="USD", competitor="Gong", reasons=["price"],
               posted_at=PERIOD_DAY + timedelta(days=4))  # fmt: skip
    merged = deduplicate(frame(slack, crm))
    assert len(merged) == 1
    row = merged.iloc[0]
    assert (row["id"], row["permalink"], row["text"]) == (1, slack["permalink"], "note 1")
    assert (row["amount"], row["currency"], row["crm_id"], row["competitor"]) == (
        75_000.0,
        "USD",
        "006X",
        "Gong",
    )
    assert row["reasons"] == ["price"] and row["merged_id"] == 2
    digest = digest_of(slack, crm)
    assert digest.totals["win"] == 1 and digest.merged_from_crm == 1
    assert digest.notable[0].note_id == 1 and digest.notable[0].amount == 75_000.0

    own_amount = note(1, "win", amount=10.0, currency="EUR")
    assert deduplicate(frame(own_amount, crm)).iloc[0]["amount"] == 10.0  # the note's own amount stays


@pytest.mark.parametrize(
    "other",
    [
        note(2, "win", source="message"),  # two Slack notes: two deals
        note(2, "win", source="form"),
        note(2, "win", source="import", posted_at=PERIOD_DAY + timedelta(days=5, minutes=1)),  # too far
        note(2, "loss", source="import"),  # another kind
        note(2, "win", source="import", account_id=2.0),  # another account
        note(2, "win", source="import", account_id=math.nan),  # no account to match on
    ],
)
def test_only_a_crm_row_and_a_captured_note_of_the_same_account_and_kind_merge(other: dict[str, Any]) -> None:
    assert len(deduplicate(frame(note(1, "win"), other))) == 2


def test_each_crm_row_merges_with_one_note_the_closest() -> None:
    rows = [
        note(1, "win", posted_at=PERIOD_DAY),
        note(2, "win", posted_at=PERIOD_DAY + timedelta(days=2)),
        note(3, "win", source="import", posted_at=PERIOD_DAY + timedelta(days=3)),
        note(4, "win", source="import", posted_at=PERIOD_DAY + timedelta(days=3, hours=1)),
        note(5, "win", source="import", posted_at=PERIOD_DAY + timedelta(days=3, hours=2)),
    ]
    merged = deduplicate(frame(*rows))
    # 2 and 3 are closest (1 day); then 1 and 4 (3 days 1 hour); 5 has no note left.
    assert sorted(merged["id"].tolist()) == [1, 2, 5]
    assert dict(zip(merged["id"], merged["merged_id"], strict=True))[1] == 4
    assert dict(zip(merged["id"], merged["merged_id"], strict=True))[2] == 3


def test_the_callers_frames_are_not_modified() -> None:
    rows = frame(note(1, "win"), note(2, "win", source="import", amount=5.0), note(3, "loss", tier=None))
    accounts = ACCOUNTS.copy()
    before, accounts_before = rows.copy(deep=True), accounts.copy(deep=True)
    compute_digest(rows, accounts, icp=ICP, as_of=AS_OF, timezone="America/New_York")
    deduplicate(rows)
    pd.testing.assert_frame_equal(rows, before)
    pd.testing.assert_frame_equal(accounts, accounts_before)


def test_missing_required_columns_are_named() -> None:
    with pytest.raises(ValueError, match="posted_at"):
        deduplicate(pd.DataFrame({"id": [1], "kind": ["win"], "account_id": [1.0], "tier": ["A"],
                                  "source": ["message"]}))  # fmt: skip


# --- spotlight ----------------------------------------------------------------------------------


def _closed(start: int, account_id: float, wins: int, losses: int) -> list[dict[str, Any]]:
    return [
        note(
            start + i,
            "win" if i < wins else "loss",
            account_id=account_id,
            posted_at=PERIOD_DAY - timedelta(weeks=i % 13),
        )
        for i in range(wins + losses)
    ]


def test_spotlight_compares_values_with_enough_deals_to_the_baseline() -> None:
    accounts = pd.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "tier": ["A", "B", "D", "D"],
            "industry": ["Software", "software ", "Retail", "Mining"],
            "employees": [850.0, 5000.0, 40.0, np.nan],
            "country": ["United States", "Finland", "Germany", None],
        }
    )
    rows = [
        *_closed(100, 1.0, 6, 0),  # Software (two spellings), 850 and 5,000 employees
        *_closed(200, 2.0, 3, 1),
        *_closed(300, 3.0, 1, 7),  # Retail: 8 closed deals, 1 win
        *_closed(400, 4.0, 2, 5),  # Mining: 7 closed deals, below the threshold
        *_closed(500, math.nan, 0, 9),  # no account: in the baseline only
    ]
    spotlight = compute_digest(
        frame(*rows), accounts, icp=ICP, as_of=AS_OF, timezone="America/New_York"
    ).spotlight
    baseline = spotlight[0].baseline
    assert (baseline.numerator, baseline.denominator) == (12, 34)
    shown = {(s.field, s.value): s for s in spotlight}
    assert ("industry", "Mining") not in shown and all(
        s.rate.denominator >= SPOTLIGHT_MIN_N for s in spotlight
    )
    software = shown[("industry", "Software")]  # "software " is the same value
    assert (software.rate.numerator, software.rate.denominator, software.better) == (9, 10, True)
    assert software.difference == pytest.approx(9 / 10 - 12 / 34)
    retail = shown[("industry", "Retail")]
    assert (retail.rate.numerator, retail.rate.denominator, retail.better) == (1, 8, False)
    assert shown[("employees", "1–199 employees")].rate.denominator == 8
    assert ("employees", "200–999 employees") not in shown  # 6 deals only
    assert [s.better for s in spotlight] == sorted((s.better for s in spotlight), reverse=True)
    over = [s for s in spotlight if s.better]
    assert len(over) <= 3 and [abs(s.difference) for s in over] == sorted(
        (abs(s.difference) for s in over), reverse=True
    )


def test_spotlight_renewal_loss_rate_and_threshold() -> None:
    def renewals(start: int, account_id: float, lost: int, kept: int) -> list[dict[str, Any]]:
        return [
            note(start + i, "renewal_loss", account_id=account_id) if i < lost
            else note(start + i, None, renewal_kept=True, source="import", account_id=account_id)
            for i in range(lost + kept)
        ]  # fmt: skip

    rows = [*renewals(100, 1.0, 1, 9), *renewals(200, 3.0, 6, 2), *renewals(300, 2.0, 1, 6)]
    spotlight = digest_of(*rows).spotlight
    by_value = {(s.field, s.value, s.metric): s for s in spotlight}
    retail = by_value[("industry", "Retail", "renewal-loss rate")]
    assert (retail.rate.numerator, retail.rate.denominator, retail.better) == (6, 8, False)
    software = by_value[("industry", "Software", "renewal-loss rate")]
    assert (software.rate.numerator, software.rate.denominator, software.better) == (1, 10, True)
    assert ("industry", "Healthcare", "renewal-loss rate") not in by_value  # 7 renewals
    assert software.baseline.numerator == 8 and software.baseline.denominator == 25


def test_spotlight_reads_criterion_fields_numeric_bounds_and_lists() -> None:
    icp = ICPDefinition.model_validate(
        {
            "version": "x",
            "criteria": [
                {"name": "Revenue", "field": "annual_revenue", "at_least": 20_000_000, "weight": 10},
                {"name": "ARR", "field": "arr", "between": [10_000, 100_000], "weight": 10},
                {"name": "Stack", "field": "tech_stack", "contains": "Salesforce", "weight": 10},
            ],
        }
    )
    accounts = pd.DataFrame(
        {
            "id": [1, 2],
            "tier": ["A", "D"],
            "annual_revenue": [25e6, 5e6],
            "arr": [50_000.0, 500_000.0],
            "tech_stack": ["Salesforce; Slack", "HubSpot, Slack"],
        }
    )
    rows = [*_closed(100, 1.0, 8, 0), *_closed(200, 2.0, 0, 8)]
    spotlight = compute_digest(frame(*rows), accounts, icp=icp, as_of=AS_OF, timezone="UTC").spotlight
    # Baseline 8 of 16; "Slack" (both accounts) is exactly the baseline and is left out.
    assert [(s.field, s.value, s.better, s.difference) for s in spotlight] == [
        ("annual_revenue", "10M–99M", True, 0.5),
        ("arr", "10,000–100,000", True, 0.5),
        ("tech_stack", "Salesforce", True, 0.5),
        ("annual_revenue", "under 10M", False, -0.5),
        ("arr", "above 100,000", False, -0.5),
        ("tech_stack", "HubSpot", False, -0.5),
    ]
