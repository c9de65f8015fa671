"""A learned second opinion on an outcome's kind: multinomial logistic regression.

The rules in `insights.tagging` read an outcome's kind from cue phrases; on phrasings they have
not seen they miss outcomes, and sometimes take chatter for one. This model reads the same
message as a bag of features: the light stems of its words and word pairs (with account names,
rivals, names and figures masked, so it learns how outcomes are written, not which companies
had them), plus what the rules found (their decision, the cues that fired and those that were
discarded as negated, hypothetical or planned). It gives a probability for each kind and for
"no outcome", and `decide` lets it overrule the rules only when it is sure:

- the rules found nothing: the model's kind is taken when its probability is at least `add`;
- the rules found a kind: the model drops it when "no outcome" has at least `drop`, or switches
  it when another kind has at least `switch`.

The weights are trained by `bench/train_kind_model.py` from the tuning files of
tests/data/tagging and kept in `insights/kind_model.json`; the thresholds come from
leave-one-file-out cross-validation (`bench/kind_cv.py`). Scoring a message is a few dozen
dictionary look-ups in plain Python: NumPy is needed only to train.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from itertools import repeat
from operator import add, mul, sub, truediv
from pathlib import Path
from typing import Any

NONE = "none"  # the class for "no outcome"
FORMAT = 1
MODEL_PATH = Path(__file__).with_name("kind_model.json")
_MASKS = frozenset({"ACCOUNT", "RIVAL", "NAME", "NUM"})  # what the tagger writes for names and figures


def rule_features(
    kind: str | None,
    scores: Mapping[str, float],
    blocked: Iterable[str],
    *,
    unsupported: bool,
    marked: bool,
    amount: bool,
    account: bool,
    rival: bool,
) -> list[str]:
    """What the rules found, as features of the second-level model."""
    out = ["r:kind:" + (kind or NONE)]
    for k, score in scores.items():
        if score > 0:
            out.append("r:cue:" + k)
            if score >= 3:
                out.append("r:strong:" + k)
    out += ["r:blocked:" + k for k in sorted(set(blocked))]  # sorted: the same sums in every process
    # The flags that are on, in this order.
    if unsupported:
        out.append("r:unsupported")
    if marked:
        out.append("r:marked")
    if amount:
        out.append("r:amount")
    if account:
        out.append("r:account")
    if rival:
        out.append("r:rival")
    return out


@dataclass(frozen=True)
class Policy:
    """When the model's opinion replaces the rules' (see the module docstring)."""

    add: float = 2.0  # above 1: never
    drop: float = 2.0
    switch: float = 2.0


@dataclass(frozen=True)
class Linear:
    """Multinomial logistic regression over named features (binary, or with a value)."""

    classes: tuple[str, ...]
    bias: tuple[float, ...]
    weights: Mapping[str, tuple[float, ...]]

    def scores(self, features: Iterable[str], values: Mapping[str, float] | None = None) -> list[float]:
        # Called for every message: the arithmetic runs in `map` and `sum` rather than in Python
        # loops, in a fixed order (a class's bias + the sum of its binary features' weights, in
        # the order given, then each valued feature's weight * value, in turn), so a message
        # always gets the same scores to the last bit.
        get = self.weights.get
        rows = list(filter(None, map(get, features)))  # the weights of the known features
        totals = list(map(add, self.bias, map(sum, zip(*rows, strict=True)))) if rows else list(self.bias)
        if values:
            # Per class: its total, + weight * value of each valued feature in turn.
            for name, value in values.items():
                w = get(name)
                if w is not None:
                    if len(w) != len(totals):  # (as `zip(..., strict=True)` would)
                        raise ValueError(f"weights of {name!r} do not match the classes")
                    totals = list(map(add, totals, map(mul, w, repeat(value))))
        return totals

    def probabilities(
        self, features: Iterable[str], values: Mapping[str, float] | None = None
    ) -> list[float]:
        scores = self.scores(features, values)
        exps = list(map(math.exp, map(sub, scores, repeat(max(scores)))))
        return list(map(truediv, exps, repeat(sum(exps))))

    def as_json(self) -> dict[str, Any]:
        return {
            "bias": [round(b, 4) for b in self.bias],
            "weights": {name: [round(x, 4) for x in self.weights[name]] for name in sorted(self.weights)},
        }

    @classmethod
    def of_json(cls, classes: tuple[str, ...], data: Mapping[str, Any]) -> Linear:
        # Names interned: a feature string interned too (`insights.tagging` interns the words'
        # ones) is then found by identity, without reading the stored name's characters.
        weights = {sys.intern(str(k)): tuple(float(x) for x in v) for k, v in data["weights"].items()}
        if any(len(w) != len(classes) for w in weights.values()) or len(data["bias"]) != len(classes):
            raise ValueError("kind model weights do not match its classes")
        return cls(classes, tuple(float(b) for b in data["bias"]), weights)


_SMALL = 1e-4
_FLOOR = math.log(_SMALL)


def stack_values(
    text_probs: Sequence[float], classes: Sequence[str], rule_kind: str | None
) -> dict[str, float]:
    """The text model's opinion as valued features of the second level: its log-probabilities,
    and its probability of the rules' kind."""
    values = {
        "t:" + c: math.log(p) if p > _SMALL else _FLOOR for c, p in zip(classes, text_probs, strict=True)
    }
    values["t:agree"] = text_probs[classes.index(rule_kind or NONE)]
    return values


@dataclass(frozen=True)
class Decision:
    kind: str | None
    probability: float  # the model's probability of `kind` (or of "no outcome")
    overruled: bool  # the model changed the rules' kind
    words: tuple[str, ...] = ()  # the features that pushed most toward `kind`


@dataclass(frozen=True)
class KindModel:
    """A text model (words only) and, over it, a second level that weighs it against the rules."""

    text: Linear
    stack: Linear | None = None  # None: the text model's probabilities are used as they are
    policy: Policy = field(default_factory=Policy)
    trained_on: tuple[str, ...] = ()

    @property
    def classes(self) -> tuple[str, ...]:
        return self.text.classes

    def probabilities(self, words: Sequence[str], rules: Sequence[str], rule_kind: str | None) -> list[float]:
        text_probs = self.text.probabilities(words)
        if self.stack is None:
            return text_probs
        return self.stack.probabilities(rules, stack_values(text_probs, self.classes, rule_kind))

    def decide(self, words: Sequence[str], rules: Sequence[str], rule_kind: str | None) -> Decision:
        """The kind after the model's second opinion on the rules' `rule_kind`."""
        probs = self.probabilities(words, rules, rule_kind)
        return self.apply(probs, rule_kind, words)

    def apply(self, probs: Sequence[float], rule_kind: str | None, words: Sequence[str] = ()) -> Decision:
        classes = self.classes
        p = max(probs)
        best = probs.index(p)
        label = classes[best]
        policy = self.policy
        kind: str | None = rule_kind
        if rule_kind is None:
            if label != NONE and p >= policy.add:
                kind = label
        elif label == NONE:
            if p >= policy.drop:
                kind = None
        elif label != rule_kind and p >= policy.switch:
            kind = label
        if kind == rule_kind:
            return Decision(kind, probs[classes.index(kind or NONE)], False)
        return Decision(kind, p, True, self.reasons_for(words, kind or NONE))

    def reasons_for(self, words: Sequence[str], label: str, top: int = 3) -> tuple[str, ...]:
        """The words of this message that weigh most toward `label` (the evidence): features that
        are only masks ("ACCOUNT", "NUM") or "some emoji" say nothing to a reader and are left out."""
        c = self.classes.index(label)
        get = self.text.weights.get
        pushed = []
        for name in words:
            w = get(name)
            if w is None:
                continue
            pull = w[c] - max(w[:c] + w[c + 1 :])
            written = name[2:].replace("<s> ", "")
            if pull > 0 and name != "e:any" and not all(part in _MASKS for part in written.split()):
                pushed.append((pull, written))
        pushed.sort(reverse=True)
        return tuple(dict.fromkeys(written for _, written in pushed[:top]))

    # -- storage -------------------------------------------------------------------------------

    def to_json(self) -> str:
        """Deterministic JSON: sorted features, weights rounded to 4 decimals."""
        data = {
            "format": FORMAT,
            "classes": list(self.classes),
            "policy": {"add": self.policy.add, "drop": self.policy.drop, "switch": self.policy.switch},
            "trained_on": list(self.trained_on),
            "stack": self.stack.as_json() if self.stack is not None else None,
            "text": self.text.as_json(),
        }
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n"

    @classmethod
    def from_json(cls, text: str) -> KindModel:
        data: dict[str, Any] = json.loads(text)
        if data.get("format") != FORMAT:
            raise ValueError(f"kind model format {data.get('format')!r} is not {FORMAT}")
        classes = tuple(str(c) for c in data["classes"])
        stack = Linear.of_json(classes, data["stack"]) if data.get("stack") else None
        policy = Policy(**{k: float(v) for k, v in data["policy"].items()})
        return cls(Linear.of_json(classes, data["text"]), stack, policy, tuple(data.get("trained_on", ())))


@lru_cache(maxsize=1)
def bundled_model() -> KindModel | None:
    """The model shipped with the package (None when the file is missing)."""
    try:
        return KindModel.from_json(MODEL_PATH.read_text(encoding="utf-8"))
    except FileNotFoundError:  # pragma: no cover - the file ships with the package
        return None


# ---------------------------------------------------------------------------------------------
# Training (NumPy)


@dataclass(frozen=True)
class TrainingOptions:
    l2: float = 1.0  # per-weight penalty, against the summed (not averaged) loss
    min_count: int = 2  # a feature must occur in this many training messages
    iterations: int = 300
    balanced: bool = False  # weight classes inversely to their frequency
    none_weight: float = 1.0  # extra weight of "no outcome" examples (keeps chatter out)


# The options `bench/kind_cv.py` measured and `bench/train_kind_model.py` ships.
TEXT_OPTIONS = TrainingOptions(l2=0.3)
STACK_OPTIONS = TrainingOptions(l2=3.0, min_count=1)
TRAINING_FILES = ("labelled", "holdout", "training2", "training3")

Row = tuple[Sequence[str], Mapping[str, float]]  # binary features, valued features


def train_linear(
    rows: Sequence[Row],
    labels: Sequence[str | None],
    classes: Sequence[str],
    options: TrainingOptions = TrainingOptions(),
) -> Linear:
    """Fit multinomial logistic regression with L2 by full-batch Adam on a fixed schedule.

    Deterministic: features are indexed in sorted order, weights start at zero and nothing is
    random, so the same rows give the same weights.
    """
    import numpy as np

    names = [NONE if label is None else label for label in labels]
    counts: dict[str, int] = {}
    for binary, valued in rows:
        for name in {*binary, *valued}:
            counts[name] = counts.get(name, 0) + 1
    vocabulary = sorted(name for name, n in counts.items() if n >= options.min_count)
    index = {name: i for i, name in enumerate(vocabulary)}
    n, v, k = len(rows), len(vocabulary), len(classes)
    # The design matrix, sparse: (row, column, value) for each feature present in a message.
    cells: dict[tuple[int, int], float] = {}
    for r, (binary, valued) in enumerate(rows):
        for name in binary:
            if name in index:
                cells[(r, index[name])] = 1.0
        for name, value in valued.items():
            if name in index:
                cells[(r, index[name])] = float(value)
    keys = sorted(cells)
    rows_of = np.array([r for r, _ in keys], dtype=np.int64)
    cols_of = np.array([c for _, c in keys], dtype=np.int64)
    vals = np.array([cells[key] for key in keys])
    y = np.zeros((n, k))
    y[np.arange(n), [classes.index(name) for name in names]] = 1.0
    sample = np.ones(n)
    if options.balanced:
        frequency = y.sum(axis=0)
        sample = (n / (k * np.maximum(frequency, 1.0)))[y.argmax(axis=1)]
    sample = sample * np.where(np.array(names) == NONE, options.none_weight, 1.0)
    sample = sample / sample.mean()

    def gradient(w: Any, b: Any) -> tuple[Any, Any]:
        gathered = w[cols_of] * vals[:, None]
        z = np.stack([np.bincount(rows_of, gathered[:, c], minlength=n) for c in range(k)], axis=1) + b
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        residual = (p - y) * sample[:, None]
        spread = residual[rows_of] * vals[:, None]
        g_w = np.stack([np.bincount(cols_of, spread[:, c], minlength=v) for c in range(k)], axis=1)
        return (g_w + 2 * options.l2 * w) / n, residual.sum(axis=0) / n

    weights, bias = np.zeros((v, k)), np.zeros(k)
    m_w, v_w, m_b, v_b = np.zeros_like(weights), np.zeros_like(weights), np.zeros(k), np.zeros(k)
    beta1, beta2, step = 0.9, 0.999, 0.1
    for t in range(1, options.iterations + 1):
        g_w, g_b = gradient(weights, bias)
        m_w = beta1 * m_w + (1 - beta1) * g_w
        v_w = beta2 * v_w + (1 - beta2) * g_w * g_w
        m_b = beta1 * m_b + (1 - beta1) * g_b
        v_b = beta2 * v_b + (1 - beta2) * g_b * g_b
        rate = step * math.sqrt(1 - beta2**t) / (1 - beta1**t)
        weights -= rate * m_w / (np.sqrt(v_w) + 1e-8)
        bias -= rate * m_b / (np.sqrt(v_b) + 1e-8)
    # Rounded as they are stored; features whose weights all round to zero carry nothing.
    table = {name: tuple(round(float(x), 4) for x in weights[i]) for i, name in enumerate(vocabulary)}
    table = {name: w for name, w in table.items() if any(w)}
    return Linear(tuple(classes), tuple(round(float(b), 4) for b in bias), table)


@dataclass(frozen=True)
class Example:
    """One labelled message as the model reads it."""

    words: tuple[str, ...]  # text features
    rules: tuple[str, ...]  # rule features
    rule_kind: str | None
    kind: str | None  # the label


def out_of_fold_text(
    groups: Mapping[str, Sequence[Example]], classes: Sequence[str], options: TrainingOptions
) -> dict[str, list[list[float]]]:
    """Each group's text-model probabilities from a text model trained on the other groups."""
    out = {}
    for held in sorted(groups):
        rest = [e for name in sorted(groups) if name != held for e in groups[name]]
        model = train_linear([(e.words, {}) for e in rest], [e.kind for e in rest], classes, options)
        out[held] = [model.probabilities(e.words) for e in groups[held]]
    return out


THRESHOLDS = (0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 2.0)


def choose_policy(
    probs: Sequence[Sequence[float]],
    rule_kinds: Sequence[str | None],
    kinds: Sequence[str | None],
    classes: Sequence[str],
    *,
    switch: bool = True,
) -> Policy:
    """The thresholds that get the most kinds right on these (out-of-fold) probabilities while
    capturing no more chatter than the rules do; ties go to the higher (more cautious) ones.

    `add` acts only where the rules found nothing, `drop` and `switch` only where they found a
    kind, so the two halves are scored apart and then combined."""
    model = KindModel(Linear(tuple(classes), (0.0,) * len(classes), {}))

    def score(rows: list[int], policy: Policy) -> tuple[int, int]:
        right = captured = 0
        tuned = replace(model, policy=policy)
        for r in rows:
            kind = tuned.apply(probs[r], rule_kinds[r]).kind
            right += kind == kinds[r]
            captured += kind is not None and kinds[r] is None
        return right, captured

    empty = [r for r, k in enumerate(rule_kinds) if k is None]
    found = [r for r, k in enumerate(rule_kinds) if k is not None]
    limit = sum(1 for r in found if kinds[r] is None)  # the chatter the rules capture
    adds = [(*score(empty, Policy(add=a)), a) for a in THRESHOLDS]
    keeps = [
        (*score(found, Policy(drop=d, switch=w)), d, w)
        for d in THRESHOLDS
        for w in (THRESHOLDS if switch else (2.0,))
    ]
    best: tuple[int, float, Policy] = (-1, 0.0, Policy())
    for right_a, captured_a, a in adds:
        for right_k, captured_k, d, w in keeps:
            key = (right_a + right_k, a + d + w)
            if captured_a + captured_k <= limit and key > best[:2]:
                best = (*key, Policy(a, d, w))
    return best[2]


def train_model(
    groups: Mapping[str, Sequence[Example]],
    classes: Sequence[str],
    text_options: TrainingOptions = TEXT_OPTIONS,
    stack_options: TrainingOptions = STACK_OPTIONS,
    *,
    switch: bool = True,
) -> KindModel:
    """Train the kind model on groups of labelled messages (one group per file).

    1. The text model, on every group.
    2. The second level, on the text model's out-of-fold probabilities (each group scored by a
       text model trained on the other groups), so it learns how far to trust the text model on
       messages it has not seen.
    3. The policy thresholds, on the second level's out-of-fold probabilities (each group scored
       by a second level trained on the other groups' rows).
    """
    names = sorted(groups)
    every = [e for name in names for e in groups[name]]
    text = train_linear([(e.words, {}) for e in every], [e.kind for e in every], classes, text_options)
    oof = out_of_fold_text(groups, classes, text_options)
    rows: dict[str, list[Row]] = {
        name: [
            (e.rules, stack_values(probs, classes, e.rule_kind))
            for e, probs in zip(groups[name], oof[name], strict=True)
        ]
        for name in names
    }

    def fit_stack(using: Sequence[str]) -> Linear:
        return train_linear(
            [row for name in using for row in rows[name]],
            [e.kind for name in using for e in groups[name]],
            classes,
            stack_options,
        )

    stacked: list[list[float]] = []
    for held in names:
        level = fit_stack([name for name in names if name != held])
        stacked += [level.probabilities(*row) for row in rows[held]]
    policy = choose_policy(
        stacked, [e.rule_kind for e in every], [e.kind for e in every], classes, switch=switch
    )
    return KindModel(text, fit_stack(names), policy, tuple(names))
