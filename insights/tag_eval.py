"""Score a tagger against labelled messages: the figures `icp-bot tag --eval` prints.

Labelled lines hold `text`, `kind` (a kind or null), `account`, `competitor` and `reasons`.
Definitions:
- kind accuracy: over every message (null counts as a value);
- account and competitor accuracy: over messages whose labelled kind is an outcome;
  names compare case-insensitively, null equals null;
- reason precision and recall: micro-averaged over outcome messages;
- amount accuracy: over outcome messages whose line has an `amount` key: value within 1%,
  same currency, same unit (null equals null);
- chatter false-capture rate: share of messages labelled null that were tagged with a kind.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from insights.normalize import fold
from insights.tagging import KINDS, TagResult

TagFn = Callable[[str], TagResult]


@dataclass(frozen=True)
class LabelledMessage:
    text: str
    kind: str | None
    account: str | None
    competitor: str | None
    reasons: tuple[str, ...] = ()
    # None: not labelled; {}: labelled "no amount"; else {"value", "currency", "unit"}
    amount: Mapping[str, Any] | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LabelledMessage:
        kind = data.get("kind")
        if kind is not None and kind not in KINDS:
            raise ValueError(f"'kind' must be one of {', '.join(KINDS)} or null, not {kind!r}")
        text = data.get("text")
        if not isinstance(text, str):
            raise ValueError("every line needs a 'text' string")
        reasons = data.get("reasons") or []
        if not isinstance(reasons, list):
            raise ValueError("'reasons' must be a list of reason codes")
        amount: Mapping[str, Any] | None = None
        if "amount" in data:
            amount = data["amount"] or {}
            if not isinstance(amount, dict) or (amount and not isinstance(amount.get("value"), int | float)):
                raise ValueError('\'amount\' must be null or {"value": number, "currency", "unit"}')
        return cls(
            text, kind, data.get("account"), data.get("competitor"), tuple(str(r) for r in reasons), amount
        )


@dataclass(frozen=True)
class Miss:
    text: str
    errors: tuple[str, ...]  # "kind: expected loss, got none", ...


@dataclass(frozen=True)
class EvalReport:
    messages: int
    outcomes: int
    chatter: int
    kind_accuracy: float
    account_accuracy: float
    competitor_accuracy: float
    reason_precision: float
    reason_recall: float
    amount_accuracy: float
    chatter_false_capture: float
    per_kind: dict[str, dict[str, float]]  # kind -> precision, recall, support
    misses: list[Miss] = field(default_factory=list)


def _same(a: str | None, b: str | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and fold(a) == fold(b))


def _same_amount(expected: Mapping[str, Any], result: TagResult) -> bool:
    got = result.amount
    if not expected or got is None:
        return not expected and got is None
    value = float(expected["value"])
    close = abs(got.value - value) <= 0.01 * max(abs(value), 1.0)
    return close and got.currency == expected.get("currency", "USD") and got.unit == expected.get("unit")


def _ratio(n: float, d: float) -> float:
    return n / d if d else 1.0


@dataclass
class _Tally:
    total: int = 0
    outcomes: int = 0
    chatter: int = 0
    captured: int = 0
    kind_ok: int = 0
    account_ok: int = 0
    competitor_ok: int = 0
    reason_tp: int = 0
    reason_pred: int = 0
    reason_true: int = 0
    amounts: int = 0
    amount_ok: int = 0
    predicted: Counter[str] = field(default_factory=Counter)
    expected: Counter[str] = field(default_factory=Counter)
    correct: Counter[str] = field(default_factory=Counter)

    def add(self, item: LabelledMessage, result: TagResult) -> tuple[int, list[str]]:
        """Count one message; return how bad its misses are and what they were."""
        self.total += 1
        errors: list[str] = []
        weight = 0
        expected, predicted = item.kind or "none", result.kind or "none"
        self.expected[expected] += 1
        self.predicted[predicted] += 1
        if result.kind == item.kind:
            self.kind_ok += 1
            self.correct[expected] += 1
        else:
            errors.append(f"kind: expected {expected}, got {predicted}")
            weight += 3
        if item.kind is None:
            self.chatter += 1
            self.captured += result.kind is not None
            return weight, errors
        self.outcomes += 1
        if _same(result.account, item.account):
            self.account_ok += 1
        else:
            errors.append(f"account: expected {item.account}, got {result.account}")
            weight += 2
        if _same(result.competitor, item.competitor):
            self.competitor_ok += 1
        else:
            errors.append(f"competitor: expected {item.competitor}, got {result.competitor}")
            weight += 1
        want, got = set(item.reasons), set(result.reasons)
        self.reason_tp += len(want & got)
        self.reason_pred += len(got)
        self.reason_true += len(want)
        if want != got:
            errors.append(f"reasons: expected {sorted(want)}, got {sorted(got)}")
            weight += 1
        if item.amount is not None:
            self.amounts += 1
            if _same_amount(item.amount, result):
                self.amount_ok += 1
            else:
                errors.append(f"amount: expected {dict(item.amount) or None}, got {result.amount}")
        return weight, errors


def evaluate(tag: TagFn, labelled: Iterable[LabelledMessage], worst: int = 10) -> EvalReport:
    """Run `tag` over every labelled message and compute the report."""
    tally = _Tally()
    misses: list[tuple[int, Miss]] = []
    for item in labelled:
        weight, errors = tally.add(item, tag(item.text))
        if errors:
            misses.append((weight, Miss(item.text, tuple(errors))))
    per_kind = {
        k: {
            "precision": _ratio(tally.correct[k], tally.predicted[k]),
            "recall": _ratio(tally.correct[k], tally.expected[k]),
            "support": float(tally.expected[k]),
        }
        for k in (*KINDS, "none")
    }
    misses.sort(key=lambda m: -m[0])
    return EvalReport(
        messages=tally.total,
        outcomes=tally.outcomes,
        chatter=tally.chatter,
        kind_accuracy=_ratio(tally.kind_ok, tally.total),
        account_accuracy=_ratio(tally.account_ok, tally.outcomes),
        competitor_accuracy=_ratio(tally.competitor_ok, tally.outcomes),
        reason_precision=_ratio(tally.reason_tp, tally.reason_pred),
        reason_recall=_ratio(tally.reason_tp, tally.reason_true),
        amount_accuracy=_ratio(tally.amount_ok, tally.amounts),
        chatter_false_capture=_ratio(tally.captured, tally.chatter) if tally.chatter else 0.0,
        per_kind=per_kind,
        misses=[m for _, m in misses[:worst]],
    )
