"""The fit check: score an account's fields against the ICP definition.

Pure: takes a mapping of field name to value (canonical fields and imported extras alike) and an
`ICPDefinition`; returns a `FitScore`. Missing data is "unknown", never a miss.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from insights.config import NUMERIC_OPERATORS, ICPDefinition, Rule
from insights.normalize import fold, format_number, parse_number, split_list

# How a field reads in a detail line: "850 employees", "annual revenue 25M".
_FIELD_LABELS = {
    "employees": "employees",
    "annual_revenue": "annual revenue",
    "arr": "ARR",
}


@dataclass(frozen=True)
class RuleResult:
    """One criterion or disqualifier applied to one account.

    `matched` is True, False, or None when the account has no usable value for the field.
    """

    name: str
    field: str
    matched: bool | None
    weight: float
    detail: str


@dataclass(frozen=True)
class FitScore:
    score: int
    tier: str
    criteria: tuple[RuleResult, ...]
    disqualifiers: tuple[RuleResult, ...]
    # Score if every unknown criterion turned out to match: how much the missing data could add.
    max_score: int
    # The tier the score alone would give, before any disqualifier cap.
    uncapped_tier: str

    @property
    def disqualified_by(self) -> list[str]:
        return [d.name for d in self.disqualifiers if d.matched]

    @property
    def unknown(self) -> list[str]:
        return [c.name for c in self.criteria if c.matched is None]


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):  # NaN from pandas
        return True
    return isinstance(value, str) and not value.strip()


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    return parse_number(str(value))


def _show(value: Any) -> str:
    number = _as_number(value) if not isinstance(value, str) else None
    if number is not None:
        return format_number(number)
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "…"


def _join(values: Iterable[Any], limit: int = 6) -> str:
    items = [_show(v) for v in values]
    if len(items) > limit:
        return ", ".join(items[:limit]) + f" and {len(items) - limit} more"
    return ", ".join(items)


def _label(field: str) -> str:
    return _FIELD_LABELS.get(field, field.replace("_", " "))


def _numeric_phrase(field: str, number: float) -> str:
    shown = format_number(number)
    if field == "employees":
        return f"{shown} employees"
    return f"{_label(field)} {shown}"


def _text_equal(a: Any, b: Any) -> bool:
    na, nb = _as_number(a), _as_number(b)
    if na is not None and nb is not None:
        return na == nb
    return fold(str(a)) == fold(str(b))


def evaluate_rule(rule: Rule, fields: Mapping[str, Any]) -> tuple[bool | None, str]:
    """Apply one rule to an account's fields: (matched or None when unknown, human detail)."""
    value = fields.get(rule.field)
    op = rule.operator
    if _is_missing(value):
        return None, f"no {_label(rule.field)} on record"

    if op in NUMERIC_OPERATORS:
        number = _as_number(value)
        if number is None:
            return None, f"{_label(rule.field)} '{_show(value)}' is not a number"
        phrase = _numeric_phrase(rule.field, number)
        if op == "between":
            lo, hi = rule.between or (0.0, 0.0)
            ok = lo <= number <= hi
            bounds = f"{format_number(lo)}–{format_number(hi)}"
            return ok, f"{phrase}, {'within' if ok else 'outside'} {bounds}"
        limit = float(rule.operand)
        checks = {
            "at_least": (number >= limit, "at least", "below"),
            "at_most": (number <= limit, "at most", "above"),
            "below": (number < limit, "below", "not below"),
            "above": (number > limit, "above", "not above"),
        }
        ok, yes_word, no_word = checks[op]
        return ok, f"{phrase}, {yes_word if ok else no_word} {format_number(limit)}"

    label = _label(rule.field)
    if op == "contains":
        wanted = [rule.contains] if isinstance(rule.contains, str) else list(rule.contains or [])
        items = value if isinstance(value, list) else split_list(str(value))
        have = {fold(str(i)) for i in items}
        missing = [w for w in wanted if fold(w) not in have]
        if not missing:
            return True, f"{label} includes {_join(wanted)}"
        return False, f"{label} lacks {_join(missing)}"

    items = value if isinstance(value, list) else [value]
    if op == "equals":
        ok = any(_text_equal(i, rule.equals) for i in items)
        return ok, f"{label} {_join(items)}, {'is' if ok else 'is not'} {_show(rule.equals)}"
    options = list(rule.any_of or rule.none_of or [])
    hit = any(_text_equal(i, o) for i in items for o in options)
    if op == "any_of":
        return hit, f"{label} {_join(items)}, {'one of' if hit else 'not one of'} {_join(options)}"
    return (not hit), f"{label} {_join(items)}, {'excluded' if hit else 'not excluded'} ({_join(options)})"


def tier_for(score: int, tiers: Mapping[str, int]) -> str:
    """The best tier whose minimum the score reaches (tiers are ordered best first)."""
    for name, minimum in tiers.items():
        if score >= minimum:
            return name
    return list(tiers)[-1]


def score_account(fields: Mapping[str, Any], icp: ICPDefinition) -> FitScore:
    """Score one account: weighted share of matched criteria scaled to 0-100, tier, caps.

    `fields` maps canonical field names (`industry`, `employees`, `country`, ...) and any
    imported extra column names to values; None, NaN and empty text are "unknown".
    A matching disqualifier caps the tier at its `cap` (the lowest tier by default).
    """
    criteria: list[RuleResult] = []
    total = matched = possible = 0.0
    for criterion in icp.criteria:
        ok, detail = evaluate_rule(criterion, fields)
        criteria.append(RuleResult(criterion.name, criterion.field, ok, criterion.weight, detail))
        total += criterion.weight
        if ok:
            matched += criterion.weight
        if ok is not False:
            possible += criterion.weight
    score = round(100 * matched / total) if total else 0
    max_score = round(100 * possible / total) if total else 0

    tier_names = list(icp.tiers)
    uncapped = tier_for(score, icp.tiers)
    tier = uncapped
    disqualifiers: list[RuleResult] = []
    for rule in icp.disqualifiers:
        ok, detail = evaluate_rule(rule, fields)
        disqualifiers.append(RuleResult(rule.name, rule.field, ok, 0.0, detail))
        if ok:
            cap = rule.cap or tier_names[-1]
            if tier_names.index(tier) < tier_names.index(cap):
                tier = cap
    return FitScore(
        score=score,
        tier=tier,
        criteria=tuple(criteria),
        disqualifiers=tuple(disqualifiers),
        max_score=max_score,
        uncapped_tier=uncapped,
    )
