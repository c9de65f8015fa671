"""The one renderer: Jinja2 prose from `templates/`, data shaped in Python.

Values from users or data are never trusted: `mrkdwn` escapes them for Slack, and terminal output
has control characters removed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

import templates
from insights.capture import NoteView
from insights.digest import Rate
from insights.errors import AccountNotFoundError
from insights.outcomes_service import OutcomesImportSummary
from insights.service import FitAnswer, FitOverview
from insights.tag_eval import EvalReport
from insights.tagging import Amount, TagResult, slack_to_plain

_TERMINAL_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_MARKS = {True: "✓", False: "✗", None: "?"}


def escape_mrkdwn(value: object) -> str:
    """Escape text for Slack: &, < and > only, so user text can never ping @channel."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def terminal_safe(value: object) -> str:
    """Text for a terminal: no control characters that could move the cursor or recolour it."""
    return _TERMINAL_UNSAFE.sub("", str(value))


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.1f}"


KIND_LABELS = {
    "win": "Win",
    "loss": "Loss",
    "renewal_loss": "Renewal loss",
    "implementation_failure": "Implementation failure",
    "customer_win": "Customer win",
}
_CURRENCY_SIGNS = {"USD": "$", "EUR": "€", "GBP": "£"}


def kind_label(kind: str | None) -> str:
    return KIND_LABELS.get(kind or "", "Not an outcome")


def reason_label(code: str) -> str:
    return escape_mrkdwn(code.replace("_", " "))


def money(amount: dict[str, Any] | None) -> str:
    """{"value": 48000, "currency": "USD", "unit": "arr"} -> "$48k ARR"."""
    if not amount:
        return ""
    value = float(amount.get("value") or 0)
    currency = str(amount.get("currency") or "")
    sign = _CURRENCY_SIGNS.get(currency, "")
    if value >= 1_000_000:
        shown = f"{value / 1_000_000:.1f}".removesuffix(".0") + "M"
    elif value >= 1_000:
        shown = f"{value / 1_000:.1f}".removesuffix(".0") + "k"
    else:
        shown = f"{value:,.0f}"
    text = f"{sign}{shown}" if sign else f"{shown} {currency}".strip()
    unit = amount.get("unit")
    return escape_mrkdwn(f"{text} {str(unit).upper()}" if unit else text)


def day(value: datetime) -> str:
    return f"{value:%b} {value.day}, {value.year}"


def snippet(text: str, limit: int = 90) -> str:
    """A message's first words as plain text (Slack markup removed), for a one-line quote."""
    plain = " ".join(slack_to_plain(text).split())
    return plain if len(plain) <= limit else plain[: limit - 1].rstrip() + "…"


def link(url: str | None, label: str) -> str:
    """A mrkdwn link whose label is escaped; a missing or odd URL leaves the label alone."""
    safe = escape_mrkdwn(label).replace("|", "¦")
    if not url or any(ch in url for ch in "<>| \n"):
        return safe
    return f"<{url}|{safe}>"


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(templates.__file__).parent)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # Slack and terminals are not HTML; escaping is explicit per value
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["mrkdwn"] = escape_mrkdwn
    env.filters["term"] = terminal_safe
    env.filters["number"] = _number
    env.filters["kind_label"] = kind_label
    env.filters["reason_label"] = reason_label
    env.filters["money"] = money
    env.filters["day"] = day
    env.filters["snippet"] = snippet
    env.globals["link"] = link
    env.globals["mark"] = lambda matched: _MARKS[matched]
    env.filters.update(DIGEST_FILTERS)  # the weekly digest (defined at the end of this module)
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context).rstrip() + "\n"


def fit_json(answer: FitAnswer) -> dict[str, Any]:
    """The contract's `fit --json` shape, plus details that help scripts."""
    fit = answer.fit

    def weight(w: float) -> int | float:
        return int(w) if float(w).is_integer() else w

    return {
        "account": answer.account,
        "account_id": answer.account_id,
        "query": answer.query,
        "matched_from": answer.matched_from,
        "score": fit.score,
        "max_score": fit.max_score,
        "tier": fit.tier,
        "uncapped_tier": fit.uncapped_tier,
        "icp_version": answer.icp_version,
        "criteria": [
            {
                "name": c.name,
                "field": c.field,
                "matched": c.matched,
                "weight": weight(c.weight),
                "detail": c.detail,
            }
            for c in fit.criteria
        ],
        "unknown": fit.unknown,
        "disqualified_by": fit.disqualified_by,
        "disqualifiers": [
            {"name": d.name, "field": d.field, "matched": d.matched, "detail": d.detail}
            for d in fit.disqualifiers
        ],
        "outcomes": dict(answer.outcomes),
        "fields": answer.fields,
    }


def not_found_json(error: AccountNotFoundError) -> dict[str, Any]:
    return {
        "error": error.code,
        "query": error.query,
        "suggestions": [s.name for s in error.suggestions],
        "candidates": [asdict(s) for s in error.suggestions],
    }


def fit_text(answer: FitAnswer) -> str:
    width = max((len(c.name) for c in answer.fit.criteria), default=8)
    return render("fit.txt.j2", a=answer, fit=answer.fit, width=width)


def overview_text(overview: FitOverview, tier: str | None) -> str:
    return render("accounts_list.txt.j2", o=overview, tier=tier)


def tag_json(result: TagResult) -> dict[str, Any]:
    """The contract's `tag --json` shape, plus the amount and the evidence for each field."""
    return {
        "text": result.text,
        "kind": result.kind,
        "account": result.account,
        "competitor": result.competitor,
        "reasons": list(result.reasons),
        "confidence": result.confidence,
        # Built field by field: `asdict` deep-copies through each dataclass, which made this
        # function twice as costly per message of `icp-bot tag` (16 µs against 8).
        "amount": _amount_json(result.amount),
        "evidence": [{"field": e.field, "value": e.value, "words": e.words} for e in result.evidence],
    }


def _amount_json(amount: Amount | None) -> dict[str, Any] | None:
    if amount is None:
        return None
    return {"value": amount.value, "currency": amount.currency, "unit": amount.unit}


def note_json(note: NoteView) -> dict[str, Any]:
    """The contract's `notes export` shape: the `tag` keys plus where, who, when and status."""
    return {
        "id": note.id,
        "text": note.text,
        "kind": note.kind,
        "account": note.account,
        "competitor": note.competitor,
        "reasons": list(note.reasons),
        "confidence": note.confidence,
        "channel": note.channel,
        "ts": note.ts,
        "user": note.user,
        "created_at": note.created_at.isoformat(),
        "status": note.status,
        "source": note.source,
        "account_id": note.account_id,
        "tier": note.tier,
        "amount": note.amount,
        "thread_ts": note.thread_ts,
        "permalink": note.permalink,
        "posted_at": note.posted_at.isoformat(),
        "retracted_reason": note.retracted_reason,
        "corrected_by": note.corrected_by,
        "crm_id": note.crm_id,
        "details": note.details,
    }


def tag_text(result: TagResult) -> str:
    return render("tag.txt.j2", r=result)


def eval_text(report: EvalReport, source: str) -> str:
    return render("tag_eval.txt.j2", r=report, source=source)


# ---------------------------------------------------------------------------------------------
# The weekly digest: plain-text helpers shared by its Slack, terminal and HTML renderings. They
# never escape; each template escapes for its medium (`mrkdwn`, `term`, or HTML autoescape).

_SPARKS = "▁▂▃▄▅▆▇█"


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def percent(value: float | None) -> str:
    """0.625 -> "63%"; None (no closed deals) -> "–"."""
    value = _finite(value)
    return "–" if value is None else f"{value * 100:.0f}%"


def rate_text(rate: Rate) -> str:
    """A rate with its n: "63% (n=16)"; a small sample shows counts, never a bare percentage."""
    value = _finite(rate.value)
    if rate.denominator == 0 or value is None:
        return "n=0"
    if rate.small_sample:
        return f"{rate.numerator} of {rate.denominator} (n={rate.denominator}, small sample)"
    return f"{percent(value)} (n={rate.denominator})"


def change_arrow(now: float | None, before: float | None, tolerance: float = 0.005) -> str:
    """↑, ↓ or → from `before` to `now`; "" when either is unknown."""
    now, before = _finite(now), _finite(before)
    if now is None or before is None:
        return ""
    if now > before + tolerance:
        return "↑"
    if now < before - tolerance:
        return "↓"
    return "→"


def points(difference: float | None) -> str:
    """A difference of two rates in percentage points: 0.24 -> "+24 pts"."""
    difference = _finite(difference)
    if difference is None:
        return ""
    shown = round(difference * 100)
    return f"{'+' if shown > 0 else '−' if shown < 0 else '±'}{abs(shown)} pts"


def sparkline(values: Iterable[float | None]) -> str:
    """Rates in 0..1 as ▁..█ on a fixed scale (0% is ▁, 100% is █); "·" where there is no rate."""
    out = []
    for value in values:
        v = _finite(value)
        out.append("·" if v is None else _SPARKS[min(7, max(0, int(v * 8)))])
    return "".join(out)


def short_day(value: date) -> str:
    return f"{value:%b} {value.day}"


def amount_text(value: float | None, currency: str | None = None) -> str:
    """48000, "USD" -> "$48k"; an unknown currency is written after the figure; None -> ""."""
    value = _finite(value)
    if value is None:
        return ""
    sign = _CURRENCY_SIGNS.get(currency or "", "")
    size = abs(value)
    if size >= 1_000_000_000:
        shown = f"{value / 1_000_000_000:.1f}".removesuffix(".0") + "B"
    elif size >= 1_000_000:
        shown = f"{value / 1_000_000:.1f}".removesuffix(".0") + "M"
    elif size >= 1_000:
        shown = f"{value / 1_000:.1f}".removesuffix(".0") + "k"
    else:
        shown = f"{value:,.0f}"
    return f"{sign}{shown}" if sign else f"{shown} {currency or ''}".strip()


def clip(value: object, limit: int = 60) -> str:
    """One line of at most `limit` characters: whitespace collapsed, a cut marked with "…"."""
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def label(code: str) -> str:
    """A code or field name as words: "security_compliance" -> "security compliance"."""
    return str(code).replace("_", " ")


DIGEST_FILTERS: dict[str, Callable[..., str]] = {
    "percent": percent,
    "rate": rate_text,
    "arrow": change_arrow,
    "points": points,
    "sparkline": sparkline,
    "short_day": short_day,
    "amount": amount_text,
    "clip": clip,
    "label": label,
}


_KIND_COUNTS = {
    "win": ("win", "wins"),
    "loss": ("loss", "losses"),
    "renewal_loss": ("renewal loss", "renewal losses"),
    "implementation_failure": ("implementation failure", "implementation failures"),
    "customer_win": ("customer win", "customer wins"),
}
_OUTCOME_LAYOUTS = {"salesforce": "Salesforce Opportunity export", "hubspot": "HubSpot deals export"}


def outcomes_import_text(summary: OutcomesImportSummary, elapsed: float) -> str:
    """The terminal summary of `icp-bot outcomes import`."""
    kinds = [
        f"{_number(n)} {_KIND_COUNTS[k][0] if n == 1 else _KIND_COUNTS[k][1]}"
        for k, n in summary.by_kind.items()
    ]
    stages = [f"{_number(n)} {stage}" for stage, n in list(summary.open_stages.items())[:4]]
    if len(summary.open_stages) > 4:
        stages.append("...")
    return render(
        "outcomes_import.txt.j2",
        s=summary,
        elapsed=elapsed,
        layout=_OUTCOME_LAYOUTS.get(summary.layout, summary.layout),
        kinds=kinds,
        stages=", ".join(stages),
    )
