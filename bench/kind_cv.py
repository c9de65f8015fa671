"""Grouped cross-validation of outcome-kind detection: the rules alone vs rules + kind model.

    .venv/bin/python bench/kind_cv.py                 # the shipped configuration
    .venv/bin/python bench/kind_cv.py --sweep         # every configuration tried
    .venv/bin/python bench/kind_cv.py --landscape     # fixed thresholds (for insight, not a score)

Leave-one-file-out over the tuning files (labelled, holdout, training2, training3): the kind model
is trained (text model, second level and policy thresholds, see `insights.kind_model.train_model`)
on three files and scored on the fourth, so no figure comes from lines the model was fitted or
tuned on. The rules are the same in every fold; they were written against all four files, so
their own figures here are optimistic, and the model's gains are measured against that.

Reports, pooled over the four held-out files: kind accuracy, per-kind recall and precision, and
the chatter false-capture rate (share of null lines tagged with a kind); and kind accuracy and
chatter per file. dialect_*.jsonl (one team's slang, learned from its corrections) and
holdout2/holdout3 (blind sets) are never read.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from insights.config import load_config
from insights.kind_model import (
    NONE,
    STACK_OPTIONS,
    TEXT_OPTIONS,
    TRAINING_FILES,
    Example,
    KindModel,
    Policy,
    TrainingOptions,
    train_model,
)
from insights.matching import AccountRef
from insights.tagging import KINDS, Tagger

DATA = ROOT / "tests" / "data" / "tagging"
FOLDS = TRAINING_FILES
CLASSES = (NONE, *KINDS)


@dataclass(frozen=True)
class Item:
    file: str
    example: Example

    @property
    def kind(self) -> str | None:
        return self.example.kind

    @property
    def rule_kind(self) -> str | None:
        return self.example.rule_kind


@dataclass(frozen=True)
class Config:
    name: str
    text: TrainingOptions = field(default_factory=lambda: TrainingOptions(l2=0.3))
    stack: TrainingOptions = field(default_factory=lambda: TrainingOptions(min_count=1))
    switch: bool = True  # may the model change one kind into another (else only add or drop)


SHIPPED = Config("shipped", text=TEXT_OPTIONS, stack=STACK_OPTIONS)
SWEEP = (
    Config("stack"),
    Config("stack noswitch", switch=False),
    Config("stack text l2=1", text=TrainingOptions(l2=1.0)),
    Config("stack text l2=0.1", text=TrainingOptions(l2=0.1)),
    Config("stack balanced", stack=TrainingOptions(min_count=1, balanced=True)),
    SHIPPED,
)


def rules_tagger() -> Tagger:
    """The tagger of the tests: sample accounts, example taxonomy, rules only."""
    with (ROOT / "bot" / "resources" / "sample_accounts.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    accounts = [
        AccountRef(i, r["name"], r["domain"] or None, r["country"] or None) for i, r in enumerate(rows, 1)
    ]
    taxonomy = load_config(ROOT / "bot" / "resources" / "icp.example.yml").taxonomy
    return Tagger(accounts, taxonomy, kind_model=False)


def load(files: Sequence[str], tagger: Tagger) -> list[Item]:
    items = []
    for name in files:
        for line in (DATA / f"{name}.jsonl").read_text("utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                rule_kind, words, rules = tagger.kind_features(row["text"])
                items.append(Item(name, Example(tuple(words), tuple(rules), rule_kind, row["kind"])))
    return items


def fit(items: Sequence[Item], config: Config) -> KindModel:
    groups: dict[str, list[Example]] = {}
    for item in items:
        groups.setdefault(item.file, []).append(item.example)
    return train_model(groups, CLASSES, config.text, config.stack, switch=config.switch)


def figures(pairs: Sequence[tuple[str | None, str | None]]) -> dict[str, float]:
    """Kind accuracy, chatter false-capture and per-kind recall/precision of (label, predicted)."""
    chatter = [p for g, p in pairs if g is None]
    out = {
        "accuracy": sum(g == p for g, p in pairs) / len(pairs),
        "chatter": sum(p is not None for p in chatter) / len(chatter) if chatter else 0.0,
    }
    for kind in (*KINDS, None):
        name = kind or NONE
        hit = sum(g == p == kind for g, p in pairs)
        expected = sum(g == kind for g, _ in pairs)
        predicted = sum(p == kind for _, p in pairs)
        out[f"recall:{name}"] = hit / expected if expected else 1.0
        out[f"precision:{name}"] = hit / predicted if predicted else 1.0
    return out


def cross_validate(items: Sequence[Item], config: Config) -> tuple[list[str | None], list[KindModel]]:
    """Each item's kind from a model that never saw its file."""
    predicted: list[str | None] = [None] * len(items)
    models = []
    for held in FOLDS:
        model = fit([i for i in items if i.file != held], config)
        models.append(model)
        for n, item in enumerate(items):
            if item.file == held:
                e = item.example
                predicted[n] = model.decide(e.words, e.rules, e.rule_kind).kind
    return predicted, models


def table(rows: dict[str, dict[str, float]]) -> str:
    keys = ["accuracy", "chatter"] + [f"{m}:{k}" for k in (*KINDS, NONE) for m in ("recall", "precision")]
    width = max(10, *(len(n) + 2 for n in rows))
    lines = ["".ljust(34) + "".join(n.rjust(width) for n in rows)]
    for key in keys:
        label = key.replace(":", " ")
        lines.append(label.ljust(34) + "".join(f"{r[key] * 100:.1f}%".rjust(width) for r in rows.values()))
    return "\n".join(lines)


def per_file(items: Sequence[Item], predicted: Sequence[str | None]) -> str:
    parts = []
    for name in FOLDS:
        f = figures([(i.kind, p) for i, p in zip(items, predicted, strict=True) if i.file == name])
        parts.append(f"{name} {f['accuracy'] * 100:.1f}%/{f['chatter'] * 100:.1f}%")
    return "  ".join(parts)


def landscape(items: Sequence[Item], config: Config) -> None:
    """Pooled figures under fixed thresholds (the same out-of-fold probabilities): shows how
    broad the region of gains is. Choosing thresholds from this table would tune on the test."""
    probs = []
    for held in FOLDS:
        model = fit([i for i in items if i.file != held], config)
        probs += [
            (i, model, model.probabilities(i.example.words, i.example.rules, i.rule_kind))
            for i in items
            if i.file == held
        ]
    grid = (0.5, 0.6, 0.7, 0.8, 0.9, 2.0)
    print(f"\n{config.name}: accuracy/chatter with fixed thresholds (rows add, columns drop; no switch)")
    print("add\\drop " + "".join(f"{d:>12}" for d in grid))
    for add in grid:
        cells = []
        for drop in grid:
            pairs = [
                (i.kind, replace(m, policy=Policy(add, drop)).apply(p, i.rule_kind).kind) for i, m, p in probs
            ]
            f = figures(pairs)
            cells.append(f"{f['accuracy'] * 100:.1f}/{f['chatter'] * 100:.1f}")
        print(f"{add:<9}" + "".join(f"{c:>12}" for c in cells))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sweep", action="store_true", help="try every configuration, not only the shipped one"
    )
    parser.add_argument("--only", help="with --sweep: the configurations whose name contains this")
    parser.add_argument("--landscape", action="store_true", help="also print fixed-threshold figures")
    args = parser.parse_args()

    started = time.perf_counter()
    items = load(FOLDS, rules_tagger())
    print(f"{len(items)} messages, features read in {time.perf_counter() - started:.1f} s")
    rules = [i.rule_kind for i in items]
    results = {"rules": figures([(i.kind, p) for i, p in zip(items, rules, strict=True)])}
    print(f"{'rules':<20} {per_file(items, rules)}")
    configs = (
        [c for c in SWEEP if args.only in c.name]
        if args.sweep and args.only
        else SWEEP
        if args.sweep
        else [SHIPPED]
    )
    for config in configs:
        started = time.perf_counter()
        predicted, models = cross_validate(items, config)
        results[config.name] = figures([(i.kind, p) for i, p in zip(items, predicted, strict=True)])
        chosen = ", ".join(f"{m.policy.add:.2f}/{m.policy.drop:.2f}/{m.policy.switch:.2f}" for m in models)
        print(f"{config.name:<20} {per_file(items, predicted)}  "
              f"(add/drop/switch per fold: {chosen}; {time.perf_counter() - started:.0f} s)")  # fmt: skip
    print("\nPooled over the four held-out files (leave-one-file-out):")
    print(table(results))
    if args.landscape:
        for config in configs:
            landscape(items, config)


if __name__ == "__main__":
    main()
