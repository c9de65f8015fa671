"""The weekly digest, rendered: Block Kit for Slack, a terminal preview, HTML for email, and JSON.

The numbers come from `insights.digest.Digest`; the wording from `templates/digest.*.j2`. Slack
blocks are built here with slack_sdk's block models and stay within Slack's limits whatever the data:
lists are cut to their top entries with a count of the rest (the HTML page and the JSON keep them
all), names are clipped, and every value from users or the data is escaped for its medium.
"""

from __future__ import annotations

import base64
import math
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

import templates
from bot.blocks import MESSAGE_BLOCKS, SECTION_LIMIT, TEXT_LIMIT, SlackMessage, sections
from bot.render import DIGEST_FILTERS, amount_text, change_arrow, clip, environment, escape_mrkdwn, render
from insights.digest import (
    SMALL_SAMPLE,
    TREND_WEEKS,
    Digest,
    Ranked,
    Rate,
    SpotlightItem,
    TierStats,
    WeekStats,
)

HEADER_LIMIT = 150  # characters of plain text in a header block
FIELD_LIMIT = 2000  # characters in one section field
FIELDS_PER_SECTION = 10
WILSON_Z = 1.959964  # 95%


@dataclass(frozen=True)
class ListLimits:
    """How many entries of each list a rendering shows; the rest are counted, never silently dropped.
    The defaults are Slack's (a message a VP reads in a minute); the HTML page and the JSON show all."""

    reasons: int = 5
    competitors: int = 5
    notable: int = 15
    spotlight: int = 5


TERMINAL_LIMITS = ListLimits(reasons=10, competitors=10, notable=20, spotlight=10)
EVERYTHING = ListLimits(reasons=10**9, competitors=10**9, notable=10**9, spotlight=10**9)


@dataclass(frozen=True)
class DigestView:
    """The digest and the figures every rendering derives from it, computed once, in Python."""

    d: Digest
    last_day: date  # the period's last day (its end is the next Monday, exclusive)
    inside_tiers: tuple[str, ...]  # the ICP: the top two tiers
    inside: Rate  # win rate inside the ICP, this period
    outside: Rate
    inside_before: Rate  # pooled over the trend weeks before the period
    outside_before: Rate
    inside_trend: tuple[float | None, ...]  # weekly win rates, oldest first, the period last
    outside_trend: tuple[float | None, ...]
    limits: ListLimits = field(default_factory=ListLimits)
    small_sample: int = SMALL_SAMPLE

    @staticmethod
    def better(item: SpotlightItem) -> bool:
        """Whether an attribute value does better than the baseline: a higher win rate, or a lower
        renewal-loss rate."""
        lower_is_better = "loss" in item.metric
        return item.difference < 0 if lower_is_better else item.difference > 0

    @staticmethod
    def arr(t: TierStats, *, unit: bool = True) -> str:
        """A tier's renewal-loss ARR as plain text ("$48k ARR"); amounts in several currencies are
        summed as written by the computation, and said to be mixed."""
        currency = getattr(t, "renewal_loss_currency", None)  # newer Digests say which currency
        mixed = currency == "mixed"
        text = amount_text(t.renewal_loss_arr, None if mixed else currency)
        if mixed:
            return text + (" ARR in mixed currencies" if unit else " mixed")
        return text + (" ARR" if unit else "")


def _value(x: float | None) -> float | None:
    """None for a missing or NaN figure, so that JSON never carries NaN."""
    return None if x is None or math.isnan(x) else float(x)


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def make_rate(numerator: int, denominator: int) -> Rate:
    """A rate with its Wilson 95% interval, flagged as a small sample below SMALL_SAMPLE."""
    if not denominator:
        return Rate(numerator, 0, None, None, None, True)
    p, n, z2 = numerator / denominator, denominator, WILSON_Z**2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = WILSON_Z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return Rate(numerator, n, p, max(0.0, centre - half), min(1.0, centre + half), n < SMALL_SAMPLE)


def build_digest_view(d: Digest, limits: ListLimits | None = None) -> DigestView:
    """The figures the renderings add to a Digest: win rates inside and outside the ICP this period
    and pooled over the trend weeks before it (the arrows compare the two), and the weekly series."""
    inside_tiers = tuple(d.tiers[:2])
    current = d.weekly[-1] if d.weekly and d.weekly[-1].week_start == d.period.start else None
    before = [w for w in d.weekly if w.week_start < d.period.start][-TREND_WEEKS:]
    if current is not None:
        inside_now = (current.icp_wins, current.icp_losses)
        outside_now = (current.other_wins, current.other_losses)
    else:  # no weekly row for the period: the tier table has the same counts
        inside_now = (
            sum(t.wins for t in d.by_tier if t.tier in inside_tiers),
            sum(t.losses for t in d.by_tier if t.tier in inside_tiers),
        )
        outside_now = (
            sum(t.wins for t in d.by_tier if t.tier not in inside_tiers),
            sum(t.losses for t in d.by_tier if t.tier not in inside_tiers),
        )

    def pooled(weeks: list[WeekStats], inside: bool) -> Rate:
        wins = sum(w.icp_wins if inside else w.other_wins for w in weeks)
        losses = sum(w.icp_losses if inside else w.other_losses for w in weeks)
        return make_rate(wins, wins + losses)

    return DigestView(
        d=d,
        last_day=d.period.end - timedelta(days=1),
        inside_tiers=inside_tiers,
        inside=make_rate(inside_now[0], sum(inside_now)),
        outside=make_rate(outside_now[0], sum(outside_now)),
        inside_before=pooled(before, inside=True),
        outside_before=pooled(before, inside=False),
        inside_trend=tuple(_ratio(w.icp_wins, w.icp_wins + w.icp_losses) for w in d.weekly),
        outside_trend=tuple(_ratio(w.other_wins, w.other_wins + w.other_losses) for w in d.weekly),
        limits=limits or ListLimits(),
    )


# ---------------------------------------------------------------------------------------------
# JSON: the contract's `digest --json` shape, plus everything the renderings show


def _rate_json(rate: Rate) -> dict[str, Any]:
    return {
        "value": _value(rate.value),
        "numerator": rate.numerator,
        "n": rate.denominator,
        "low": _value(rate.low),
        "high": _value(rate.high),
        "small_sample": rate.small_sample,
    }


def digest_json(d: Digest) -> dict[str, Any]:
    """`icp-bot digest --json`. Win rates are recomputed from the counts beside them (wins / (wins
    + losses), null when both are 0), so every rate can be checked against its own row."""
    v = build_digest_view(d)
    inside = set(v.inside_tiers)
    return {
        "period": {
            "start": d.period.start.isoformat(),
            "end": d.period.end.isoformat(),
            "last_day": v.last_day.isoformat(),
            "timezone": d.period.timezone,
        },
        "icp_version": d.icp_version,
        "tiers": list(d.tiers),
        "inside_icp_tiers": list(v.inside_tiers),
        "quiet": d.quiet,
        "outcomes_in_period": d.outcomes_in_period,
        "merged_from_crm": getattr(d, "merged_from_crm", 0),
        "totals": dict(d.totals),
        "small_sample_below": SMALL_SAMPLE,
        "by_tier": {
            t.tier: {
                "wins": t.wins,
                "losses": t.losses,
                "win_rate": _ratio(t.wins, t.wins + t.losses),
                "n": t.wins + t.losses,
                "win_rate_low": _value(t.win_rate.low),
                "win_rate_high": _value(t.win_rate.high),
                "small_sample": t.win_rate.small_sample,
                "renewal_losses": t.renewal_losses,
                "renewal_loss_arr": _value(t.renewal_loss_arr),
                "renewal_loss_currency": getattr(t, "renewal_loss_currency", None),
                "renewals_kept": t.renewals_kept,
                "implementation_failures": t.implementation_failures,
                "customer_wins": t.customer_wins,
                "inside_icp": t.tier in inside,
            }
            for t in d.by_tier
        },
        "weekly": [
            {
                "week_start": w.week_start.isoformat(),
                "wins": w.wins,
                "losses": w.losses,
                "win_rate": _ratio(w.wins, w.wins + w.losses),
                "icp_wins": w.icp_wins,
                "icp_losses": w.icp_losses,
                "icp_win_rate": _ratio(w.icp_wins, w.icp_wins + w.icp_losses),
                "other_wins": w.other_wins,
                "other_losses": w.other_losses,
                "other_win_rate": _ratio(w.other_wins, w.other_wins + w.other_losses),
            }
            for w in d.weekly
        ],
        "win_rate_inside_icp": {"period": _rate_json(v.inside), "trailing": _rate_json(v.inside_before)},
        "win_rate_outside_icp": {"period": _rate_json(v.outside), "trailing": _rate_json(v.outside_before)},
        "icp_share": {"period": _rate_json(d.icp_share.period), "trailing": _rate_json(d.icp_share.trailing)},
        "top_loss_reasons": [
            {"reason": r.name, "count": r.count, "previous_weekly_avg": r.previous, "change": _change(r)}
            for r in d.top_loss_reasons
        ],
        "top_competitors": [
            {"competitor": r.name, "count": r.count, "previous_weekly_avg": r.previous, "change": _change(r)}
            for r in d.top_competitors
        ],
        "notable": [
            {
                "label": n.label,
                "note_id": n.note_id,
                "kind": n.kind,
                "account": n.account,
                "tier": n.tier,
                "amount": _value(n.amount),
                "currency": n.currency,
                "permalink": n.permalink,
                "text": n.text,
                "posted_at": n.posted_at.isoformat(),
            }
            for n in d.notable
        ],
        "spotlight": [
            {
                "field": s.field,
                "value": s.value,
                "metric": s.metric,
                "rate": _rate_json(s.rate),
                "baseline": _rate_json(s.baseline),
                "difference": _value(s.difference),
                "better": v.better(s),
            }
            for s in d.spotlight
        ],
    }


def _change(r: Ranked) -> str:
    return {"↑": "up", "↓": "down", "→": "flat"}.get(change_arrow(r.count, r.previous), "flat")


# ---------------------------------------------------------------------------------------------
# Slack


def _parts(v: DigestView) -> Any:
    """The Slack template as a module: one macro per part of the message; str() is the fallback."""
    return environment().get_template("digest.mrkdwn.j2").make_module({"v": v})


def _part(parts: Any, name: str, *args: Any) -> str:
    return str(getattr(parts, name)(*args)).strip()


def _fallback(text: str) -> str:
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(line.rstrip() for line in text.strip().splitlines()))
    return text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 1] + "…"


def digest_message(d: Digest, *, chart_note: str | None = None) -> SlackMessage:
    """The digest as a Slack message. A quiet week is one line. `chart_note` is plain text (escaped
    here) shown beside the period, e.g. "Chart in the thread"."""
    v = build_digest_view(d)
    parts = _parts(v)
    if d.quiet:
        line = _part(parts, "quiet", v)
        return SlackMessage(line, [SectionBlock(text=MarkdownTextObject(text=line)).to_dict()])

    header = _part(parts, "header", v)
    body: list[Block] = [*sections(_part(parts, "summary", v))]
    body.extend(
        _tier_sections(
            _part(parts, "tiers_heading", v), [_part(parts, "tier_field", v, t) for t in d.by_tier]
        )
    )
    for name in ("loss_reasons", "competitors", "notable", "spotlight"):
        text = _part(parts, name, v)
        if text:
            body.extend([DividerBlock(), *sections(text)])

    context = [MarkdownTextObject(text=_part(parts, "context", v)[:SECTION_LIMIT])]
    if chart_note:
        context.append(MarkdownTextObject(text="📈 " + escape_mrkdwn(clip(chart_note, 300))))
    room = MESSAGE_BLOCKS - 2  # the header and the context
    if len(body) > room:  # only with data far beyond the caps: keep the first parts, say so
        body = [
            *body[: room - 1],
            SectionBlock(text=MarkdownTextObject(text="_(cut to fit Slack: see `icp-bot digest --json`)_")),
        ]
    blocks: list[Block] = [
        HeaderBlock(text=clip(header, HEADER_LIMIT)),
        *body,
        ContextBlock(elements=context),
    ]
    return SlackMessage(_fallback(str(parts)), [b.to_dict() for b in blocks])


def _tier_sections(heading: str, fields: list[str]) -> list[Block]:
    """The tier table as section fields (two columns in Slack, readable on a phone), 10 a section."""
    clipped = [f if len(f) <= FIELD_LIMIT else f[: FIELD_LIMIT - 1] + "…" for f in fields]
    out: list[Block] = []
    for i in range(0, max(len(clipped), 1), FIELDS_PER_SECTION):
        chunk = clipped[i : i + FIELDS_PER_SECTION]
        out.append(
            SectionBlock(
                text=MarkdownTextObject(text=heading[:SECTION_LIMIT]) if i == 0 else None,
                fields=[MarkdownTextObject(text=f) for f in chunk] or None,
            )
        )
    return out


# ---------------------------------------------------------------------------------------------
# Terminal


def _weekly_rates(d: Digest) -> list[tuple[WeekStats, Rate, Rate, Rate]]:
    """Each week with its win rate overall, inside and outside the ICP, flagged when small."""
    return [
        (
            w,
            make_rate(w.wins, w.wins + w.losses),
            make_rate(w.icp_wins, w.icp_wins + w.icp_losses),
            make_rate(w.other_wins, w.other_wins + w.other_losses),
        )
        for w in d.weekly
    ]


def digest_text(d: Digest) -> str:
    """`icp-bot digest --preview`: the digest for a terminal, 100 columns at most."""
    v = build_digest_view(d, TERMINAL_LIMITS)
    text = render("digest.txt.j2", v=v, weeks=_weekly_rates(d))
    return re.sub(r"\n{3,}", "\n\n", text)  # optional parts leave no double gaps


# ---------------------------------------------------------------------------------------------
# HTML, for people who forward the digest by email


def _href(url: str | None) -> str | None:
    """Only web links become links: a permalink from the data must not be javascript:."""
    return url if url and url.startswith(("https://", "http://")) else None


@lru_cache(maxsize=1)
def html_environment() -> jinja2.Environment:
    """A separate environment with HTML autoescape; the plain-text digest filters, no mrkdwn."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(templates.__file__).parent)),
        undefined=jinja2.StrictUndefined,
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(DIGEST_FILTERS)
    plain = environment().filters  # these return plain text, whatever the medium
    for name in ("number", "kind_label", "day", "snippet"):
        env.filters[name] = plain[name]
    env.filters["href"] = _href
    return env


def digest_html(d: Digest, chart_png: bytes | None = None) -> str:
    """A standalone HTML page (inline styles, the chart embedded as a data: URI when given)."""
    v = build_digest_view(d, EVERYTHING)
    chart = "data:image/png;base64," + base64.b64encode(chart_png).decode("ascii") if chart_png else None
    return (
        html_environment()
        .get_template("digest.html.j2")
        .render(v=v, weeks=_weekly_rates(d), chart=chart)
        .rstrip()
        + "\n"
    )
