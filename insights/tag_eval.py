"""Score a tagger against labelled messages: the figures `icp-bot tag --eval` prints.

Labelled lines hold `text`, `kind` (a kind or null), `account`, `competitor` and `reasons`.
Definitions:
- kind accuracy: over every message (null counts as a value);
- account and competitor accuracy: over messages whose labelled kind is an outcome;
  names compare case-insensitively, null equals null;
- reason precision and recall: micro-averaged over outcome messages;
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
        return cls(text, kind, data.get("account"), data.get("competitor"), tuple(str(r) for r in reasons))


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
    chatter_false_capture: float
    per_kind: dict[str, dict[str, float]]  # kind -> precision, recall, support
    misses: list[Miss] = field(default_factory=list)


def _same(a: str | None, b: str | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and fold(a) == fold(b))


def _ratio(n: float, d: float) -> float:
    return n / d if d else 1.0


def evaluate(tag: TagFn, labelled: Iterable[LabelledMessage], worst: int = 10) -> EvalReport:
    """Run `tag` over every labelled message and compute the report."""
    total = outcomes = chatter = captured = 0
    kind_ok = account_ok = competitor_ok = 0
    reason_tp = reason_pred = reason_true = 0
    predicted: Counter[str] = Counter()
    expected: Counter[str] = Counter()
    correct: Counter[str] = Counter()
    misses: list[tuple[int, Miss]] = []
    for item in labelled:
        result = tag(item.text)
        total += 1
        errors: list[str] = []
        weight = 0
        if result.kind == item.kind:
            kind_ok += 1
        else:
            errors.append(f"kind: expected {item.kind or 'none'}, got {result.kind or 'none'}")
            weight += 3
        predicted[result.kind or "none"] += 1
        expected[item.kind or "none"] += 1
        if result.kind == item.kind:
            correct[item.kind or "none"] += 1
        if item.kind is None:
            chatter += 1
            captured += result.kind is not None
        else:
            outcomes += 1
            if _same(result.account, item.account):
                account_ok += 1
            else:
                errors.append(f"account: expected {item.account}, got {result.account}")
                weight += 2
            if _same(result.competitor, item.competitor):
                competitor_ok += 1
            else:
                errors.append(f"competitor: expected {item.competitor}, got {result.competitor}")
                weight += 1
            want, got = set(item.reasons), set(result.reasons)
            reason_tp += len(want & got)
            reason_pred += len(got)
            reason_true += len(want)
            if want != got:
                errors.append(f"reasons: expected {sorted(want)}, got {sorted(got)}")
                weight += 1
        if errors:
            misses.append((weight, Miss(item.text, tuple(errors))))
    per_kind = {
        k: {
            "precision": _ratio(correct[k], predicted[k]),
            "recall": _ratio(correct[k], expected[k]),
            "support": float(expected[k]),
        }
        for k in (*KINDS, "none")
    }
    misses.sort(key=lambda m: -m[0])
    return EvalReport(
        messages=total,
        outcomes=outcomes,
        chatter=chatter,
        kind_accuracy=_ratio(kind_ok, total),
        account_accuracy=_ratio(account_ok, outcomes),
        competitor_accuracy=_ratio(competitor_ok, outcomes),
        reason_precision=_ratio(reason_tp, reason_pred),
        reason_recall=_ratio(reason_tp, reason_true),
        chatter_false_capture=_ratio(captured, chatter) if chatter else 0.0,
        per_kind=per_kind,
        misses=[m for _, m in misses[:worst]],
    )
