"""The one renderer: Jinja2 prose from `templates/`, data shaped in Python.

Values from users or data are never trusted: `mrkdwn` escapes them for Slack, and terminal output
has control characters removed.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

import templates
from insights.errors import AccountNotFoundError
from insights.service import FitAnswer, FitOverview
from insights.tag_eval import EvalReport
from insights.tagging import TagResult

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
    env.globals["mark"] = lambda matched: _MARKS[matched]
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
        "amount": asdict(result.amount) if result.amount else None,
        "evidence": [asdict(e) for e in result.evidence],
    }


def tag_text(result: TagResult) -> str:
    return render("tag.txt.j2", r=result)


def eval_text(report: EvalReport, source: str) -> str:
    return render("tag_eval.txt.j2", r=report, source=source)
