"""The digest's renderings (Slack, terminal, HTML, JSON) and chart, from hand-built Digest objects."""

from __future__ import annotations

import base64
import io
import json
import math
import re
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from PIL import Image

from bot.blocks import SlackMessage
from bot.chart import HEIGHT, WIDTH, digest_chart_png
from bot.digest_view import digest_html, digest_json, digest_message, digest_text
from bot.render import change_arrow, percent, points, rate_text, sparkline
from insights.digest import (
    Digest,
    IcpShare,
    NotableItem,
    Period,
    Ranked,
    Rate,
    SpotlightItem,
    TierStats,
    WeekStats,
)

START = date(2026, 11, 16)
PERMALINK = "https://acme.slack.com/archives/C0DEALS/p1763300000000100"
EVIL = "<!channel> Smith & Sons <!here> <@U123> *bold* " + "x" * 260  # 300-odd characters


def rate(numerator: int, denominator: int) -> Rate:
    value = numerator / denominator if denominator else None
    return Rate(numerator, denominator, value, None, None, denominator < 10)


def tier(name: str, wins: int, losses: int, **changes: Any) -> TierStats:
    values: dict[str, Any] = {
        "tier": name, "wins": wins, "losses": losses, "win_rate": rate(wins, wins + losses),
        "renewal_losses": 0, "renewal_loss_arr": None, "renewals_kept": 0, "implementation_failures": 0,
        "customer_wins": 0,
    }  # fmt: skip
    values.update(changes)
    return TierStats(**values)


def week(start: date, icp: tuple[int, int], other: tuple[int, int]) -> WeekStats:
    wins, losses = icp[0] + other[0], icp[1] + other[1]
    closed = wins + losses
    return WeekStats(
        week_start=start, wins=wins, losses=losses, win_rate=wins / closed if closed else None,
        icp_wins=icp[0], icp_losses=icp[1], icp_win_rate=icp[0] / sum(icp) if sum(icp) else None,
        other_wins=other[0], other_losses=other[1],
        other_win_rate=other[0] / sum(other) if sum(other) else None,
    )  # fmt: skip


def notable(label: str, account: str | None, **changes: Any) -> NotableItem:
    values: dict[str, Any] = {
        "label": label, "note_id": 1, "kind": "win", "account": account, "tier": "A", "amount": 120_000.0,
        "currency": "USD", "permalink": PERMALINK, "text": f"Closed {account} after a 3-month eval :tada:",
        "posted_at": datetime(2026, 11, 18, 15, 0, tzinfo=UTC),
    }  # fmt: skip
    values.update(changes)
    return NotableItem(**values)


def make_digest(**changes: Any) -> Digest:
    """A normal week: 13 weeks of trend, five tiers (one without a tier), lists of every kind."""
    weeks = [
        week(
            START - timedelta(weeks=12 - i),
            (3 + i % 4, 2 + i % 3),
            (0, 0) if i == 4 else (1 + i % 2, 3 + i % 3),
        )
        for i in range(12)
    ]
    weeks.append(week(START, (8, 5), (5, 11)))
    values: dict[str, Any] = {
        "period": Period(START, START + timedelta(days=7), "America/New_York"),
        "icp_version": "2026-Q4",
        "tiers": ("A", "B", "C", "D"),
        "by_tier": (
            tier("A", 7, 3, renewals_kept=3, implementation_failures=1, customer_wins=2),
            tier("B", 1, 2),
            tier("C", 4, 8, renewal_losses=1, renewal_loss_arr=48_000.0),
            tier("D", 1, 3),
            tier("unknown", 0, 0, implementation_failures=1),
        ),
        "weekly": tuple(weeks),
        "icp_share": IcpShare(period=rate(8, 13), trailing=rate(50, 90)),
        "top_loss_reasons": (
            Ranked("price", 5, 1.5),
            Ranked("security_compliance", 4, 3.0),
            Ranked("integration", 3, 3.0),
            Ranked("no_decision", 2, 2.5),
            Ranked("product_gap", 2, 0.25),
        ),
        "top_competitors": (Ranked("Gong", 3, 1.0), Ranked("Clari", 2, 2.25)),
        "notable": (
            notable("Biggest win", "Contoso Ltd"),
            notable("Biggest renewal loss", "Northwind", kind="renewal_loss", tier="C", amount=48_000.0),
            notable(
                "Implementation failure in tier A", "Fabrikam", kind="implementation_failure", amount=None
            ),
        ),
        "spotlight": (
            SpotlightItem("industry", "Healthcare", "win rate", rate(18, 25), rate(62, 130), 0.2431),
            SpotlightItem(
                "employees", "50–199 employees", "renewal-loss rate", rate(4, 9), rate(6, 60), 0.344
            ),
            SpotlightItem("country", "Germany", "renewal-loss rate", rate(15, 50), rate(60, 600), 0.2),
        ),
        "outcomes_in_period": 34,
        "quiet": False,
        "totals": {"win": 13, "loss": 16, "renewal_loss": 1, "implementation_failure": 2, "customer_win": 2},
    }
    values.update(changes)
    return Digest(**values)


def quiet_digest() -> Digest:
    empty_weeks = tuple(week(START - timedelta(weeks=12 - i), (0, 0), (0, 0)) for i in range(13))
    return make_digest(
        by_tier=tuple(tier(t, 0, 0) for t in "ABCD"),
        weekly=empty_weeks,
        icp_share=IcpShare(rate(0, 0), rate(0, 0)),
        top_loss_reasons=(),
        top_competitors=(),
        notable=(),
        spotlight=(),
        outcomes_in_period=0,
        quiet=True,
        totals={},
    )


def extreme_digest() -> Digest:
    """Everything at once: hundreds of reasons, 300-character names with mentions and &, 50 notable
    items, 200 spotlight items, a dozen tiers with long names."""
    tiers = tuple(f"T{i} {EVIL}" for i in range(12))
    return make_digest(
        icp_version=EVIL,
        tiers=tiers,
        by_tier=tuple(tier(t, 9, 9, renewal_losses=3, renewal_loss_arr=1e12) for t in tiers),
        top_loss_reasons=tuple(Ranked(f"reason_{i}_{EVIL}", 500 - i, 2.5) for i in range(300)),
        top_competitors=tuple(Ranked(f"{EVIL} {i}", 100, 0.0) for i in range(120)),
        notable=tuple(
            notable(
                f"Implementation failure {EVIL}",
                f"{EVIL} {i}",
                text=f"<!channel> {EVIL} " * 20,
                currency=EVIL,
            )
            for i in range(50)
        ),
        spotlight=tuple(
            SpotlightItem(f"field_{EVIL}", f"{EVIL} {i}", "win rate", rate(30, 40), rate(100, 400), 0.5)
            for i in range(200)
        ),
    )


# ---------------------------------------------------------------------------------------------
# Helpers


def texts(node: object) -> list[str]:
    out: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "text" and isinstance(value, str):
                out.append(value)
            else:
                out.extend(texts(value))
    elif isinstance(node, list):
        for item in node:
            out.extend(texts(item))
    return out


def assert_within_slack_limits(message: SlackMessage) -> None:
    assert len(message.blocks) <= 50
    assert len(message.text) <= 40_000
    for block in message.blocks:
        if block["type"] == "header":
            assert block["text"]["type"] == "plain_text"
            assert len(block["text"]["text"]) <= 150
        if block["type"] == "section":
            assert "text" in block or "fields" in block
            if "text" in block:
                assert len(block["text"]["text"]) <= 3000
            assert len(block.get("fields", [])) <= 10
            assert all(len(f["text"]) <= 2000 for f in block.get("fields", []))
        if block["type"] == "context":
            assert len(block["elements"]) <= 10
            assert all(len(e["text"]) <= 3000 for e in block["elements"])
    everything = json.dumps(message.blocks, ensure_ascii=False) + message.text
    for mention in ("<!channel>", "<!here>", "<@U123>"):
        assert mention not in everything


def no_control_characters(text: str) -> bool:
    return not any(unicodedata.category(ch) == "Cc" and ch != "\n" for ch in text)


# ---------------------------------------------------------------------------------------------
# JSON


def test_digest_json_has_the_contract_keys_and_types() -> None:
    data = digest_json(make_digest())
    json.dumps(data, allow_nan=False)  # plain JSON: no NaN, no dates
    assert data["period"] == {
        "start": "2026-11-16", "end": "2026-11-23", "last_day": "2026-11-22", "timezone": "America/New_York",
    }  # fmt: skip
    assert data["icp_version"] == "2026-Q4"
    assert list(data["by_tier"]) == ["A", "B", "C", "D", "unknown"]
    for stats in data["by_tier"].values():
        for key in ("wins", "losses", "renewal_losses", "implementation_failures", "customer_wins"):
            assert isinstance(stats[key], int)
        assert stats["win_rate"] is None or isinstance(stats["win_rate"], float)
    assert data["by_tier"]["A"]["win_rate"] == 0.7
    assert data["by_tier"]["unknown"]["win_rate"] is None
    assert data["by_tier"]["C"]["renewal_loss_arr"] == 48_000.0
    assert len(data["weekly"]) == 13
    for w in data["weekly"]:
        assert set(w) >= {"week_start", "wins", "losses", "win_rate"}
        assert date.fromisoformat(w["week_start"]).weekday() == 0
        closed = w["wins"] + w["losses"]
        assert w["win_rate"] == (w["wins"] / closed if closed else None)
    assert data["weekly"][-1]["week_start"] == "2026-11-16"
    assert data["top_loss_reasons"][0] == {
        "reason": "price",
        "count": 5,
        "previous_weekly_avg": 1.5,
        "change": "up",
    }
    assert all(set(r) >= {"reason", "count"} for r in data["top_loss_reasons"])
    assert data["notable"][0]["permalink"] == PERMALINK
    assert data["notable"][0]["posted_at"] == "2026-11-18T15:00:00+00:00"
    assert data["icp_share"]["period"]["n"] == 13
    assert data["win_rate_inside_icp"]["period"]["numerator"] == 8
    assert data["win_rate_outside_icp"]["period"]["n"] == 16
    assert data["spotlight"][1]["rate"]["small_sample"] is True


def test_digest_json_of_a_quiet_week_has_null_rates() -> None:
    data = digest_json(quiet_digest())
    json.dumps(data, allow_nan=False)
    assert data["quiet"] is True
    assert all(t["win_rate"] is None for t in data["by_tier"].values())
    assert all(w["win_rate"] is None for w in data["weekly"])
    assert data["top_loss_reasons"] == []


def test_nan_never_reaches_json() -> None:
    d = make_digest(by_tier=(tier("A", 0, 0, renewal_loss_arr=math.nan),))
    json.dumps(digest_json(d), allow_nan=False)


# ---------------------------------------------------------------------------------------------
# Slack


def test_slack_message_reads_in_ten_seconds() -> None:
    message = digest_message(make_digest(), chart_note="Chart in the thread")
    assert_within_slack_limits(message)
    assert message.blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "ICP digest · week of Nov 16", "emoji": True},
    }
    summary = message.blocks[1]["text"]["text"]
    assert "*Win rate inside the ICP* (A, B): *62% (n=13)*" in summary
    assert "from" in summary and ("↑" in summary or "↓" in summary)
    assert "*Outside the ICP:* 31% (n=16)" in summary
    assert (
        "*New wins inside the ICP:* 8 of 13 (62%) ↑ vs 56% on average over the previous 12 weeks" in summary
    )
    tiers = next(b for b in message.blocks if "fields" in b)
    assert len(tiers["fields"]) == 5
    assert tiers["fields"][0]["text"].startswith("*Tier A* _(ICP)_\nWin rate 70% (n=10) — 7 won, 3 lost")
    assert "48k ARR" in tiers["fields"][2]["text"]
    assert tiers["fields"][4]["text"].startswith("*No tier*")
    body = "\n".join(texts(message.blocks))
    assert "• price: *5* ↑ (avg 1.5 a week)" in body
    assert "• integration: *3* → (avg 3 a week)" in body
    assert f"<{PERMALINK}|Biggest win · Contoso Ltd>" in body
    assert "Material for the next ICP refresh" in body
    assert "• *Healthcare* _(industry)_: win rate 72% (n=25) vs 48% (n=130) overall (+24 pts, better)" in body
    assert (
        "• *Germany* _(country)_: renewal-loss rate 30% (n=50) vs 10% (n=600) overall (+20 pts, worse)"
        in body
    )
    assert "ICP 2026-Q4 · Nov 16, 2026 – Nov 22, 2026 (America/New_York)" in body
    assert "📈 Chart in the thread" in body
    assert message.blocks[-1]["type"] == "context"
    # The fallback carries the same digest, for notifications and screen readers.
    assert message.text.startswith("*ICP digest · week of Nov 16*")
    assert "62% (n=13)" in message.text and "Contoso Ltd" in message.text


def test_small_samples_are_counts_never_bare_percentages() -> None:
    message = digest_message(make_digest())
    fields = next(b for b in message.blocks if "fields" in b)["fields"]
    tier_b, tier_d = fields[1]["text"], fields[3]["text"]
    assert "Win rate 1 of 3 (n=3, small sample)" in tier_b
    assert "%" not in tier_b
    assert "1 of 4 (n=4, small sample)" in tier_d
    body = "\n".join(texts(message.blocks))
    spotlight = next(line for line in body.splitlines() if "50–199 employees" in line)
    assert "4 of 9 (n=9, small sample)" in spotlight
    assert "pts" not in spotlight and "44%" not in spotlight

    small = make_digest(weekly=(*make_digest().weekly[:-1], week(START, (3, 1), (0, 2))))
    summary = digest_message(small).blocks[1]["text"]["text"]
    assert "*3 of 4 (n=4, small sample)*" in summary
    assert "75%" not in summary


def test_rate_filters() -> None:
    assert rate_text(rate(3, 4)) == "3 of 4 (n=4, small sample)"
    assert rate_text(rate(8, 13)) == "62% (n=13)"
    assert rate_text(rate(0, 0)) == "n=0"
    assert percent(None) == "–" and percent(math.nan) == "–" and percent(0.625) == "62%"
    assert change_arrow(0.6, 0.5) == "↑" and change_arrow(0.4, 0.5) == "↓" and change_arrow(3, 3.0) == "→"
    assert change_arrow(None, 0.5) == ""
    assert points(0.2431) == "+24 pts" and points(-0.05) == "−5 pts" and points(0.001) == "±0 pts"
    assert sparkline([0.0, 0.5, 1.0, None]) == "▁▅█·"


def test_quiet_week_is_one_line() -> None:
    message = digest_message(quiet_digest())
    line = "Quiet week: no outcomes captured between Nov 16 and Nov 22."
    assert message.text == line
    assert message.blocks == [{"type": "section", "text": {"type": "mrkdwn", "text": line}}]
    assert digest_text(quiet_digest()) == line + "\n"


def test_extreme_data_stays_within_slack_limits() -> None:
    message = digest_message(extreme_digest(), chart_note=EVIL * 20)
    assert_within_slack_limits(message)
    body = "\n".join(texts(message.blocks))
    assert "&amp; Sons" in body and "&lt;!channel&gt;" in body
    assert re.search(r"&(?!amp;|lt;|gt;)", body) is None  # every & from the data is escaped
    assert "…and 295 more reasons" in body
    assert "…and 35 more" in body  # notable items beyond the first 15
    assert "…and 195 more" in body  # spotlight
    fields = [f for b in message.blocks for f in b.get("fields", [])]
    assert len(fields) == 12  # every tier, over two sections of at most 10 fields


def test_each_notable_item_links_to_its_message_and_odd_links_are_left_out() -> None:
    d = make_digest(
        notable=(
            notable("Biggest win", "A|B <x>", permalink=PERMALINK),
            notable("Biggest renewal loss", "Northwind", permalink="javascript:alert(1)|<!channel>"),
            notable("Implementation failure in tier A", None, permalink=None),
        )
    )
    body = "\n".join(texts(digest_message(d).blocks))
    assert f"<{PERMALINK}|Biggest win · A¦B &lt;x&gt;>" in body
    assert "javascript:" not in body and "<!channel>" not in body
    assert "• Implementation failure in tier A · Tier A" in body


# ---------------------------------------------------------------------------------------------
# Terminal


def test_terminal_preview_is_readable_in_100_columns() -> None:
    text = digest_text(make_digest())
    lines = text.splitlines()
    assert lines[0] == "ICP DIGEST · week of Nov 16, 2026 · ICP 2026-Q4"
    assert max(len(line) for line in lines) <= 100
    assert no_control_characters(text)
    assert "62% (n=13)" in text
    assert "1 of 3 (n=3, small sample)" in text
    trend = next(line for line in lines if line.startswith("  inside the ICP "))
    assert len(trend.split()[-1]) == 13 and set(trend.split()[-1]) <= set("▁▂▃▄▅▆▇█·")
    assert "◀ this week" in text
    assert PERMALINK in text


def test_terminal_preview_strips_control_characters_from_the_data() -> None:
    hostile = "Evil\x1b[31m Corp\x07\r\x00 \t\u009b2J"
    d = replace(
        extreme_digest(),
        notable=(notable("Biggest win", hostile, text=hostile, currency=hostile),),
        icp_version=hostile,
        tiers=("A", "B"),
        by_tier=(tier(hostile, 1, 1),),
    )
    text = digest_text(d)
    assert no_control_characters(text)
    assert "Evil[31m Corp" in text


def test_terminal_preview_of_extreme_data_stays_within_100_columns() -> None:
    text = digest_text(extreme_digest())
    assert max(len(line) for line in text.splitlines()) <= 100
    assert no_control_characters(text)
    assert "…and 290 more" in text  # reasons beyond the first 10


# ---------------------------------------------------------------------------------------------
# HTML


def test_html_escapes_the_data_and_embeds_the_chart() -> None:
    script = "<script>alert('x')</script>"
    d = make_digest(
        icp_version=script,
        notable=(
            notable("Biggest win", f"Contoso {script} & Co", text=script),
            notable("Biggest renewal loss", "Northwind", permalink="javascript:alert(1)"),
        ),
        spotlight=(SpotlightItem("industry", script, "win rate", rate(18, 25), rate(62, 130), 0.24),),
    )
    png = b"\x89PNG\r\n\x1a\nfake"
    page = digest_html(d, png)
    assert page.startswith("<!DOCTYPE html>")
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert "Contoso &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; Co" in page
    assert f'src="data:image/png;base64,{base64.b64encode(png).decode()}"' in page
    assert f'<a href="{PERMALINK}"' in page
    assert "javascript:" not in page
    assert "1 of 3 (n=3, small sample)" in page


def test_html_without_a_chart_and_for_a_quiet_week() -> None:
    page = digest_html(quiet_digest())
    assert "<img" not in page
    assert "Quiet week: no outcomes captured between Nov 16 and Nov 22." in page
    full = digest_html(extreme_digest())
    assert full.count("<li") == 50  # the page keeps every notable item
    assert "<!channel>" not in full


# ---------------------------------------------------------------------------------------------
# Chart


@pytest.mark.parametrize(
    "make", [make_digest, quiet_digest, extreme_digest], ids=["normal", "quiet", "extreme"]
)
def test_chart_is_a_png_of_the_designed_size(make: Any) -> None:
    png = digest_chart_png(make())
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(png)) as image:
        assert image.size == (WIDTH, HEIGHT) == (1200, 600)


def test_chart_handles_a_digest_with_no_weeks_and_a_dollar_in_names() -> None:
    d = make_digest(weekly=(), icp_version="$5 $plan", tiers=("$A", "$B"), by_tier=(tier("$A", 1, 0),))
    assert digest_chart_png(d).startswith(b"\x89PNG")


def test_chart_is_deterministic_and_safe_across_threads() -> None:
    d = make_digest()
    first = digest_chart_png(d)
    with ThreadPoolExecutor(max_workers=4) as pool:
        pngs = list(pool.map(digest_chart_png, [d, extreme_digest(), d, quiet_digest(), d, d]))
    assert pngs[0] == pngs[2] == pngs[4] == pngs[5] == first
    for png in pngs:
        with Image.open(io.BytesIO(png)) as image:
            assert image.size == (WIDTH, HEIGHT)


def test_a_digest_without_weekly_rows_still_renders() -> None:
    d = make_digest(weekly=())
    message = digest_message(d)
    assert_within_slack_limits(message)
    assert "``" not in message.text
    summary = message.blocks[1]["text"]["text"]
    assert "62% (n=13)" in summary  # A and B: 7 + 1 won of 13 closed
    assert "WEEKLY" not in digest_text(d)
    assert "Weekly win rate" not in digest_html(d)
    assert digest_json(d)["weekly"] == []


@pytest.mark.skipif(
    "renewal_loss_currency" not in {f.name for f in fields(TierStats)},
    reason="no ARR currency in this Digest",
)
def test_renewal_loss_arr_says_its_currency() -> None:
    usd = tier("C", 1, 1, renewal_losses=2, renewal_loss_arr=48_000.0, renewal_loss_currency="USD")
    mixed = tier("D", 1, 1, renewal_losses=2, renewal_loss_arr=60_000.0, renewal_loss_currency="mixed")
    d = make_digest(by_tier=(usd, mixed))
    fields_text = [f["text"] for b in digest_message(d).blocks for f in b.get("fields", [])]
    assert "Renewals: 2 lost ($48k ARR), 0 kept" in fields_text[0]
    assert "Renewals: 2 lost (60k ARR in mixed currencies), 0 kept" in fields_text[1]
    assert "60k mixed" in digest_text(d)
    assert digest_json(d)["by_tier"]["C"]["renewal_loss_currency"] == "USD"
