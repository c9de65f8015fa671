"""The digest use case on SQLite and PostgreSQL, and every number recomputed from `notes export`."""

from __future__ import annotations

import json
import math
import random
import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from sqlalchemy import delete, insert
from sqlalchemy.orm import Session, sessionmaker

from bot.render import note_json
from insights.capture import iter_notes
from insights.config import Config, Criterion, ICPDefinition, load_config
from insights.digest import Digest, Rate
from insights.digest_service import account_tiers, build_digest, load_digest_inputs
from insights.scoring import score_account
from insights.service import account_fields, import_accounts, iter_accounts
from storage.models import Account
from storage.repositories import NOTES_TABLE, WorkspaceRepository

TEAM = "T1"
ACCOUNTS = Path(__file__).parent.parent.parent / "bot" / "resources" / "sample_accounts.csv"
NY = ZoneInfo("America/New_York")
# The Monday after New York's clocks went back (Sunday 2026-11-01): the period is Oct 26 - Nov 2,
# a 169-hour week.
AS_OF = datetime(2026, 11, 2, 9, 0, tzinfo=NY)
PERIOD_START = datetime(2026, 10, 26, 0, 0, tzinfo=NY)
Factory = sessionmaker[Session]


@pytest.fixture
def config(example_config_path: Path) -> Config:
    base = load_config(example_config_path)
    stack = Criterion(name="Runs Salesforce", field="tech_stack", contains="Salesforce", weight=10)
    icp = base.icp.model_copy(update={"criteria": [*base.icp.criteria, stack]})
    return base.model_copy(
        update={"icp": icp, "digest": base.digest.model_copy(update={"timezone": "America/New_York"})}
    )


@pytest.fixture
def accounts(session_factory: Factory) -> list[dict[str, Any]]:
    import_accounts(session_factory, TEAM, ACCOUNTS.read_bytes(), ACCOUNTS.name)
    return list(iter_accounts(session_factory, TEAM))


def _tier_now(account: dict[str, Any], icp: ICPDefinition) -> str:
    return score_account(account_fields(account), icp).tier


_counter = iter(range(10**9))


def _row(
    kind: str | None, posted_at: datetime, account: dict[str, Any] | None, **values: Any
) -> dict[str, Any]:
    n = next(_counter)
    source = values.pop("source", "message")
    row: dict[str, Any] = {
        "team_id": TEAM,
        "channel": "CRM" if source == "import" else "C0DEALS",
        "ts": f"{posted_at.timestamp():.6f}{n:06d}",
        "thread_ts": None,
        "user_id": "U0REP",
        "permalink": None if source == "import" else f"https://example.slack.com/archives/C0DEALS/p{n}",
        "text": f"{kind or 'renewal kept'} note {n}",
        "kind": kind,
        "account": account["name"] if account else "Prospect Inc",
        "account_id": account["id"] if account else None,
        "tier": None,
        "competitor": None,
        "reasons": [],
        "amount": None,
        "confidence": 0.9,
        "status": "active",
        "source": source,
        "crm_id": f"006{n:09d}" if source == "import" else None,
        "details": {"renewal": "kept"} if kind is None else {},
        "posted_at": posted_at.astimezone(UTC),
        "created_at": posted_at.astimezone(UTC),
        "updated_at": posted_at.astimezone(UTC),
    }
    row.update(values)
    return row


def _insert(session_factory: Factory, rows: list[dict[str, Any]]) -> None:
    with session_factory.begin() as session:
        WorkspaceRepository(session).get_or_create(TEAM)
        session.execute(insert(NOTES_TABLE), rows)


def _delete_accounts(session_factory: Factory, ids: list[int]) -> None:
    with session_factory.begin() as session:
        session.execute(delete(Account).where(Account.id.in_(ids)))


def _amount(value: float, currency: str = "USD") -> dict[str, Any]:
    return {"value": value, "currency": currency, "unit": "ARR"}


# --- the use case -------------------------------------------------------------------------------


def test_retracted_notes_count_nowhere(
    session_factory: Factory, accounts: list[dict[str, Any]], config: Config
) -> None:
    when = PERIOD_START + timedelta(days=2)
    _insert(session_factory, [
        _row("win", when, accounts[0], tier="A", amount=_amount(10_000)),
        _row("win", when, accounts[1], tier="A", status="retracted", amount=_amount(900_000)),
        _row("loss", when, accounts[1], tier="A", status="retracted", reasons=["price"], competitor="Gong"),
    ])  # fmt: skip
    digest = build_digest(session_factory, TEAM, config, AS_OF)
    assert digest.totals["win"] == 1 and digest.totals["loss"] == 0
    assert digest.top_loss_reasons == () and digest.top_competitors == ()
    assert [n.amount for n in digest.notable] == [10_000.0]
    outcomes, _ = load_digest_inputs(session_factory, TEAM, config.icp, since=when - timedelta(days=1))
    assert len(outcomes) == 1


def test_a_deleted_account_keeps_its_stored_tier_and_a_note_without_one_takes_todays(
    session_factory: Factory, accounts: list[dict[str, Any]], config: Config
) -> None:
    gone, kept = accounts[0], accounts[1]
    when = PERIOD_START + timedelta(days=1)
    _insert(session_factory, [
        _row("win", when, gone, tier="B"),
        _row("loss", when, gone),  # no stored tier, and its account is deleted: no tier at all
        _row("win", when, kept),  # no stored tier: the account's tier now
    ])  # fmt: skip
    _delete_accounts(session_factory, [gone["id"]])
    digest = build_digest(session_factory, TEAM, config, AS_OF)
    by_tier = {t.tier: t for t in digest.by_tier}
    now = _tier_now(kept, config.icp)
    assert by_tier["B"].wins == (2 if now == "B" else 1)
    assert by_tier[now].wins >= 1
    assert by_tier["unknown"].losses == 1
    outcomes, accounts_frame = load_digest_inputs(
        session_factory, TEAM, config.icp, since=when - timedelta(days=1)
    )
    assert accounts_frame["id"].tolist() == [kept["id"]]  # only the accounts the notes name
    orphan = outcomes.loc[outcomes["kind"] == "win"].sort_values("id").iloc[0]
    assert math.isnan(orphan["account_id"]) and orphan["tier"] == "B"


def test_inputs_have_the_documented_columns(
    session_factory: Factory, accounts: list[dict[str, Any]], config: Config
) -> None:
    when = PERIOD_START + timedelta(days=1)
    _insert(session_factory, [
        _row("loss", when, accounts[2], tier="C", reasons=["price", "timing"], competitor="Gong",
             amount=_amount(48_000, "EUR")),
        _row(None, when, accounts[2], source="import"),
        _row("win", when - timedelta(days=30), accounts[2]),  # before `since`
    ])  # fmt: skip
    outcomes, accounts_frame = load_digest_inputs(
        session_factory, TEAM, config.icp, since=when - timedelta(days=1)
    )
    documented = {"id", "kind", "renewal_kept", "account_id", "account", "tier", "posted_at", "amount",
                  "currency", "reasons", "competitor", "permalink", "text", "source", "crm_id"}  # fmt: skip
    assert set(outcomes.columns) == documented and len(outcomes) == 2
    assert str(outcomes["posted_at"].dtype) == "datetime64[ns, UTC]"
    loss = outcomes.loc[outcomes["kind"] == "loss"].iloc[0]
    assert (loss["amount"], loss["currency"], loss["reasons"], loss["competitor"]) == (
        48_000.0,
        "EUR",
        ["price", "timing"],
        "Gong",
    )
    assert loss["posted_at"] == pd.Timestamp(when)
    kept = outcomes.loc[outcomes["kind"].isna()].iloc[0]
    assert bool(kept["renewal_kept"]) and kept["source"] == "import" and kept["reasons"] == []
    assert {"id", "tier", "industry", "employees", "country", "annual_revenue", "tech_stack"} <= set(
        accounts_frame.columns
    )
    assert accounts_frame.iloc[0]["tier"] == _tier_now(accounts[2], config.icp)


def test_no_outcomes_at_all_is_a_quiet_digest(session_factory: Factory, config: Config) -> None:
    digest = build_digest(session_factory, TEAM, config, AS_OF)
    assert digest.quiet and digest.outcomes_in_period == 0 and digest.spotlight == ()
    assert [t.tier for t in digest.by_tier] == ["A", "B", "C", "D"]


def test_account_tiers_equal_score_account_for_every_account(
    accounts: list[dict[str, Any]], config: Config
) -> None:
    icp = config.icp.model_copy(update={"criteria": [
        *config.icp.criteria,
        Criterion(name="Big ARR", field="arr", at_least=100_000, weight=15),
        Criterion(name="Private", field="ownership", any_of=["Private"], weight=5),
    ]})  # fmt: skip
    rows = [account_fields(a) | {"id": a["id"]} for a in accounts]
    rows.append(
        {"id": -1, "employees": 5000, "annual_revenue": 20_000_000, "industry": "software"}
    )  # on the bounds
    rows.append({"id": -2, "employees": None, "tech_stack": ["Salesforce", "Slack"]})  # a list value
    frame = pd.DataFrame(rows)
    frame["employees"] = pd.to_numeric(frame["employees"]).astype(float)
    frame["annual_revenue"] = pd.to_numeric(frame["annual_revenue"]).astype(float)
    expected = [score_account({k: v for k, v in r.items() if k != "id"}, icp).tier for r in rows]
    assert account_tiers(frame, icp).tolist() == expected
    assert len(set(expected)) > 2


# --- every number, recomputed from the export ---------------------------------------------------

COMPETITORS = ("Gong", "Clari", "Gainsight", "Totango")
REASONS = ("price", "budget", "product_gap", "integration", "timing", "no_decision", "adoption", "support")


def _realistic(session_factory: Factory, accounts: list[dict[str, Any]], icp: ICPDefinition) -> None:
    """A few hundred notes over 16 weeks: captured and imported, duplicates, retractions, renewals
    kept, notes without an account, and two accounts deleted after their notes were captured."""
    rng = random.Random(20261102)
    tiers = {a["id"]: _tier_now(a, icp) for a in accounts}
    start = PERIOD_START - timedelta(weeks=15)
    rows: list[dict[str, Any]] = []
    for _ in range(420):
        posted = start + timedelta(seconds=rng.random() * 16.3 * 7 * 86_400)
        account = rng.choice(accounts) if rng.random() < 0.9 else None
        roll = rng.random()
        kinds = ((0.3, "win"), (0.6, "loss"), (0.72, "renewal_loss"), (0.8, "implementation_failure"),
                 (0.9, "customer_win"), (1.0, None))  # fmt: skip
        kind = next(k for limit, k in kinds if roll < limit)
        source = (
            "import" if kind is None or rng.random() < 0.2 else ("form" if rng.random() < 0.05 else "message")
        )
        tier = None
        if account is not None and (source != "import" or rng.random() < 0.5):
            tier = tiers[account["id"]] if rng.random() < 0.85 else rng.choice(["A", "B", "C", "D"])
        elif account is None and rng.random() < 0.5:
            tier = "C"
        lost = kind in ("loss", "renewal_loss")
        values = {
            "tier": tier,
            "reasons": rng.sample(REASONS, rng.choice((0, 1, 1, 2, 3))) if lost else [],
            "competitor": rng.choice(COMPETITORS) if lost and rng.random() < 0.5 else None,
            "amount": _amount(float(rng.randrange(5, 400) * 1000), "EUR" if rng.random() < 0.1 else "USD")
            if rng.random() < 0.6 else None,
            "status": "retracted" if rng.random() < 0.06 else "active",
        }  # fmt: skip
        rows.append(_row(kind, posted, account, source=source, **values))
        if (
            source == "message"
            and kind in ("win", "loss", "renewal_loss")
            and account
            and rng.random() < 0.25
        ):
            # The same deal in the CRM export, usually within DEDUPE_DAYS, now and then just outside.
            close = posted + timedelta(days=rng.choice((-4.5, -1, 0.5, 2, 3, 4.9, 5.5, 6)))
            crm_values = {**values, "amount": _amount(77_000.0) if rng.random() < 0.7 else None,
                          "tier": None, "status": "active",
                          "competitor": rng.choice(COMPETITORS) if lost else None}  # fmt: skip
            rows.append(_row(kind, close, account, source="import", **crm_values))
    top = [a for a in accounts if tiers[a["id"]] == "A"]
    when = PERIOD_START + timedelta(days=3, hours=5)
    rows += [  # notable items this period, for sure
        _row("win", when, top[0], tier="A", amount=_amount(2_500_000.0)),
        _row("renewal_loss", when, top[1], tier="A", amount=_amount(1_900_000.0), reasons=["adoption"]),
        _row("implementation_failure", when, top[2], tier="A"),
        _row("implementation_failure", when + timedelta(hours=1), top[3], tier="A"),
        _row("win", PERIOD_START - timedelta(minutes=30), top[0], tier="A"),  # Sunday 23:30: the week before
        _row("win", PERIOD_START + timedelta(days=7, minutes=-30), top[0], tier="A"),  # Sunday 23:30: in
    ]
    _insert(session_factory, rows)
    noted = sorted({r["account_id"] for r in rows if r["account_id"] is not None and r["account_id"] not in
                    {top[0]["id"], top[1]["id"], top[2]["id"], top[3]["id"]}})  # fmt: skip
    _delete_accounts(session_factory, noted[:2])


def _export(session_factory: Factory) -> list[dict[str, Any]]:
    """`icp-bot notes export`, one JSON object per line, read back."""
    lines = [json.dumps(note_json(n), ensure_ascii=False) for n in iter_notes(session_factory, TEAM)]
    return [json.loads(line) for line in lines]


def _wilson(k: int, n: int) -> tuple[float, float]:
    z = 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (0.0 if k == 0 else centre - half, 1.0 if k == n else centre + half)


def _check_rate(rate: Rate, k: int, n: int) -> None:
    assert (rate.numerator, rate.denominator, rate.small_sample) == (k, n, n < 10)
    if n == 0:
        assert (rate.value, rate.low, rate.high) == (None, None, None)
    else:
        assert rate.value == k / n
        assert (rate.low, rate.high) == pytest.approx(_wilson(k, n), abs=1e-12)


def _employees_band(value: Any) -> str | None:
    if value is None or value < 0:
        return None
    for upper, label in ((200, "1–199"), (1000, "200–999"), (5000, "1,000–4,999")):
        if value < upper:
            return f"{label} employees"
    return "5,000+ employees"


def _revenue_band(value: Any) -> str | None:
    if value is None or value < 0:
        return None
    for upper, label in ((10e6, "under 10M"), (100e6, "10M–99M"), (1e9, "100M–999M")):
        if value < upper:
            return label
    return "1B+"


def _outcomes(
    export: list[dict[str, Any]], accounts: list[dict[str, Any]], icp: ICPDefinition
) -> list[dict[str, Any]]:
    """Active notes as outcomes; the tier stored, else the account's now."""
    tier_now = {a["id"]: _tier_now(a, icp) for a in accounts}
    outcomes = []
    for n in export:
        if n["status"] != "active":
            continue
        event = n["kind"] or ("renewal_kept" if n["details"].get("renewal") == "kept" else None)
        if event is None:
            continue
        amount = n["amount"] or {}
        outcomes.append({
            "id": n["id"], "event": event, "kind": n["kind"], "account_id": n["account_id"],
            "account": n["account"], "tier": n["tier"] or tier_now.get(n["account_id"]),
            "at": datetime.fromisoformat(n["posted_at"]), "amount": amount.get("value"),
            "currency": amount.get("currency"), "reasons": list(n["reasons"]), "competitor": n["competitor"],
            "permalink": n["permalink"], "text": n["text"], "source": n["source"], "crm_id": n["crm_id"],
        })  # fmt: skip

    return outcomes


def _dedupe(outcomes: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[int, int]]:
    # A CRM row and a captured note of the same account and kind within 5 days: closest pairs first.
    candidates = sorted(
        (abs(c["at"] - m["at"]), m["id"], c["id"])
        for m in outcomes if m["source"] != "import" and m["kind"] and m["account_id"] is not None
        for c in outcomes if c["source"] == "import" and c["kind"] == m["kind"]
        and c["account_id"] == m["account_id"] and abs(c["at"] - m["at"]) <= timedelta(days=5)
    )  # fmt: skip
    by_id = {o["id"]: o for o in outcomes}
    merged_into: dict[int, int] = {}
    dropped: set[int] = set()
    for _, note_id, crm_id in candidates:
        if note_id in merged_into or crm_id in dropped:
            continue
        merged_into[note_id] = crm_id
        dropped.add(crm_id)
        note, crm = by_id[note_id], by_id[crm_id]
        if note["amount"] is None and crm["amount"] is not None:
            note["amount"], note["currency"] = crm["amount"], crm["currency"]
        for key in ("competitor", "crm_id", "tier"):
            if note[key] is None:
                note[key] = crm[key]
        if not note["reasons"]:
            note["reasons"] = crm["reasons"]
    return [o for o in outcomes if o["id"] not in dropped], merged_into


def _recompute(
    export: list[dict[str, Any]], accounts: list[dict[str, Any]], icp: ICPDefinition
) -> dict[str, Any]:
    """Every figure of the digest from the export and the accounts, in plain Python."""
    tz = ZoneInfo("America/New_York")
    local = AS_OF.astimezone(tz)
    monday = local.date() - timedelta(days=local.weekday())
    mondays = [monday - timedelta(weeks=13 - k) for k in range(14)]  # 13 week starts and the end
    edges = [datetime(d.year, d.month, d.day, tzinfo=tz) for d in mondays]
    outcomes, merged_into = _dedupe(_outcomes(export, accounts, icp))

    for o in outcomes:
        o["week"] = next((k for k in range(13) if edges[k] <= o["at"] < edges[k + 1]), None)
        o["tier_name"] = o["tier"] or "unknown"
        o["inside"] = o["tier_name"] in ("A", "B")
    window = [o for o in outcomes if o["week"] is not None]
    period = [o for o in window if o["week"] == 12]

    tiers = ["A", "B", "C", "D"]
    extra = sorted({o["tier_name"] for o in period} - {*tiers, "unknown"})
    tiers += extra + (["unknown"] if any(o["tier_name"] == "unknown" for o in period) else [])
    by_tier = {}
    for tier in tiers:
        mine = [o for o in period if o["tier_name"] == tier]
        count = Counter(o["event"] for o in mine)
        amounts = [o for o in mine if o["event"] == "renewal_loss" and o["amount"] is not None]
        currencies = {o["currency"] for o in amounts}
        by_tier[tier] = {
            "wins": count["win"], "losses": count["loss"], "renewal_losses": count["renewal_loss"],
            "renewals_kept": count["renewal_kept"], "customer_wins": count["customer_win"],
            "implementation_failures": count["implementation_failure"],
            "renewal_loss_arr": sum(o["amount"] for o in amounts) if amounts else None,
            "currency": (currencies.pop() if len(currencies) == 1 else "mixed") if amounts else None,
        }  # fmt: skip

    weekly = []
    for k in range(13):
        week = [o for o in window if o["week"] == k]

        def n(event: str, inside: bool | None, week: list[dict[str, Any]] = week) -> int:
            return sum(1 for o in week if o["event"] == event and (inside is None or o["inside"] == inside))

        weekly.append((mondays[k], n("win", None), n("loss", None), n("win", True), n("loss", True),
                       n("win", False), n("loss", False)))  # fmt: skip

    wins_now = [o for o in period if o["event"] == "win"]
    wins_before = [o for o in window if o["event"] == "win" and o["week"] < 12]
    share = ((sum(o["inside"] for o in wins_now), len(wins_now)),
             (sum(o["inside"] for o in wins_before), len(wins_before)))  # fmt: skip

    lost = [o for o in window if o["event"] in ("loss", "renewal_loss") and o["week"] >= 8]

    def ranked(names: list[tuple[str, int]]) -> list[tuple[str, int, float]]:
        now = Counter(name for name, week in names if week == 12)
        before = Counter(name for name, week in names if week < 12)
        order = sorted(now.items(), key=lambda item: (-item[1], item[0]))[:5]
        return [(name, count, before[name] / 4) for name, count in order]

    reasons = ranked([(r, o["week"]) for o in lost for r in set(o["reasons"]) if r.strip()])
    competitors = ranked([(o["competitor"].strip(), o["week"]) for o in lost if o["competitor"]
                          and o["competitor"].strip()])  # fmt: skip

    notable = []
    for kind, label in (("win", "Biggest win"), ("renewal_loss", "Biggest renewal loss")):
        rows = [o for o in period if o["event"] == kind and o["amount"] is not None]
        if rows:
            best = min(rows, key=lambda o: (-o["amount"], o["at"], o["id"]))
            notable.append((label, best["id"], best["amount"], best["permalink"]))
    failures = sorted((o for o in period if o["event"] == "implementation_failure" and o["tier_name"] == "A"),
                      key=lambda o: (o["at"], o["id"]))  # fmt: skip
    notable += [("Implementation failure in tier A", o["id"], o["amount"], o["permalink"]) for o in failures]

    totals = Counter(o["event"] for o in period)
    return {
        "by_tier": by_tier, "weekly": weekly, "share": share, "reasons": reasons,
        "competitors": competitors, "notable": notable, "totals": totals, "window": window,
        "merged": sum(1 for o in period if o["id"] in merged_into),
        "spotlight": _recompute_spotlight(window, accounts),
    }  # fmt: skip


def _recompute_spotlight(
    window: list[dict[str, Any]], accounts: list[dict[str, Any]]
) -> list[tuple[Any, ...]]:
    fields_of = {a["id"]: account_fields(a) for a in accounts}

    def values(field: str, fields: dict[str, Any]) -> list[str]:
        value = fields.get(field)
        if field == "employees":
            band = _employees_band(value)
            return [band] if band else []
        if field == "annual_revenue":
            band = _revenue_band(value)
            return [band] if band else []
        if field == "tech_stack":
            return [item.strip() for item in re.split(r"[;,|\n]", value or "") if item.strip()]
        return [str(value).strip()] if value not in (None, "") and str(value).strip() else []

    # Case-insensitive grouping, shown in the most frequent spelling among the accounts.
    spelling: dict[tuple[str, str], str] = {}
    for field in ("industry", "employees", "country", "annual_revenue", "tech_stack"):
        seen = Counter(v for f in fields_of.values() for v in values(field, f))
        for text, _ in sorted(seen.items(), key=lambda item: (-item[1], item[0])):
            spelling.setdefault((field, text.casefold()), text)

    metrics = (
        ("win rate", "win", "loss", True),
        ("renewal-loss rate", "renewal_loss", "renewal_kept", False),
    )
    candidates = []
    for metric, hit, miss, higher in metrics:
        base_hits = sum(1 for o in window if o["event"] == hit)
        base_n = base_hits + sum(1 for o in window if o["event"] == miss)
        if base_n == 0:
            continue
        for field in ("industry", "employees", "country", "annual_revenue", "tech_stack"):
            tally: dict[str, list[int]] = {}
            for o in window:
                if o["account_id"] in fields_of and o["event"] in (hit, miss):
                    for v in values(field, fields_of[o["account_id"]]):
                        shown = spelling[(field, v.casefold())]
                        tally.setdefault(shown, [0, 0])
                        tally[shown][0] += o["event"] == hit
                        tally[shown][1] += 1
            for value, (hits, n) in tally.items():
                difference = hits / n - base_hits / base_n
                if n >= 8 and difference != 0:
                    candidates.append((difference, n, field, value, metric, hits, (difference > 0) == higher,
                                       base_hits, base_n))  # fmt: skip
    out = []
    for side in (True, False):
        chosen = sorted(
            (c for c in candidates if c[6] is side), key=lambda c: (-abs(c[0]), -c[1], c[2], c[3], c[4])
        )
        out += chosen[:3]
    return out


def test_every_number_of_the_digest_can_be_recomputed_from_the_notes_export(
    session_factory: Factory, accounts: list[dict[str, Any]], config: Config
) -> None:
    icp = config.icp
    _realistic(session_factory, accounts, icp)
    digest: Digest = build_digest(session_factory, TEAM, config, AS_OF)
    export = _export(session_factory)
    current_accounts = list(iter_accounts(session_factory, TEAM))
    expected = _recompute(export, current_accounts, icp)

    assert (digest.period.start, digest.period.end) == (date(2026, 10, 26), date(2026, 11, 2))
    assert digest.icp_version == icp.version and digest.tiers == ("A", "B", "C", "D")
    assert len(expected["window"]) > 250  # the data set is not trivially small

    assert [t.tier for t in digest.by_tier] == list(expected["by_tier"])
    for stats in digest.by_tier:
        want = expected["by_tier"][stats.tier]
        got = {"wins": stats.wins, "losses": stats.losses, "renewal_losses": stats.renewal_losses,
               "renewals_kept": stats.renewals_kept, "implementation_failures": stats.implementation_failures,
               "customer_wins": stats.customer_wins, "renewal_loss_arr": stats.renewal_loss_arr,
               "currency": stats.renewal_loss_currency}  # fmt: skip
        assert got == want  # amounts are whole numbers: sums are exact in any order
        _check_rate(stats.win_rate, want["wins"], want["wins"] + want["losses"])

    assert [(w.week_start, w.wins, w.losses, w.icp_wins, w.icp_losses, w.other_wins, w.other_losses)
            for w in digest.weekly] == expected["weekly"]  # fmt: skip
    for w in digest.weekly:
        assert w.win_rate == (w.wins / (w.wins + w.losses) if w.wins + w.losses else None)
        assert w.icp_win_rate == (
            w.icp_wins / (w.icp_wins + w.icp_losses) if w.icp_wins + w.icp_losses else None
        )
        assert w.other_win_rate == (
            w.other_wins / (w.other_wins + w.other_losses) if w.other_wins + w.other_losses else None
        )
    assert sum(w.wins + w.losses for w in digest.weekly) > 100

    (now_k, now_n), (before_k, before_n) = expected["share"]
    _check_rate(digest.icp_share.period, now_k, now_n)
    _check_rate(digest.icp_share.trailing, before_k, before_n)

    assert [(r.name, r.count, r.previous) for r in digest.top_loss_reasons] == expected["reasons"]
    assert [(r.name, r.count, r.previous) for r in digest.top_competitors] == expected["competitors"]
    assert expected["reasons"] and expected["competitors"]

    assert [(n.label, n.note_id, n.amount, n.permalink) for n in digest.notable] == expected["notable"]
    assert len(digest.notable) >= 4

    assert digest.totals == {k: expected["totals"][k] for k in digest.totals}
    assert digest.outcomes_in_period == sum(expected["totals"].values()) and not digest.quiet
    assert digest.merged_from_crm == expected["merged"]

    got_spotlight = [(s.difference, s.rate.denominator, s.field, s.value, s.metric, s.rate.numerator,
                      s.better, s.baseline.numerator, s.baseline.denominator)
                     for s in digest.spotlight]  # fmt: skip
    assert got_spotlight == expected["spotlight"]
    assert len(digest.spotlight) >= 3
