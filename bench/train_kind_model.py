"""Train the outcome-kind model and write insights/kind_model.json.

    .venv/bin/python bench/train_kind_model.py            # regenerate the file
    .venv/bin/python bench/train_kind_model.py --check    # exit 1 if the file is not what training gives

Training reads the tuning files of tests/data/tagging (labelled, holdout, training2, training3;
see `insights.kind_model.TRAINING_FILES`) through the rules of `insights.tagging` with the sample
accounts and the example taxonomy, the same setting as the tests, and is deterministic: the same
files and rules give the same bytes. Retrain whenever the rules, the vocabulary or those files
change, then check the figures with bench/kind_cv.py.

Left out on purpose: dialect_*.jsonl (one team's slang: a workspace learns it from its own
corrections, and the tests check that another workspace does not), holdout2.jsonl and
holdout3.jsonl (blind sets, never trained or tuned on).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.kind_cv import CLASSES, load, rules_tagger
from insights.kind_model import MODEL_PATH, TRAINING_FILES, Example, KindModel, train_model


def build() -> KindModel:
    items = load(TRAINING_FILES, rules_tagger())
    groups: dict[str, list[Example]] = {}
    for item in items:
        groups.setdefault(item.file, []).append(item.example)
    return train_model(groups, CLASSES)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="compare with the file instead of writing it")
    args = parser.parse_args()
    started = time.perf_counter()
    model = build()
    text = model.to_json()
    elapsed = time.perf_counter() - started
    policy = model.policy
    summary = (
        f"{len(model.text.weights):,} text features, {len(model.stack.weights) if model.stack else 0} "
        f"second-level features; thresholds add {policy.add}, drop {policy.drop}, switch {policy.switch}; "
        f"trained in {elapsed:.1f} s"
    )
    if args.check:
        current = MODEL_PATH.read_text(encoding="utf-8") if MODEL_PATH.exists() else ""
        if current != text:
            print(f"{MODEL_PATH.relative_to(ROOT)} is out of date: run bench/train_kind_model.py")
            sys.exit(1)
        print(f"{MODEL_PATH.relative_to(ROOT)} is up to date ({summary})")
        return
    MODEL_PATH.write_text(text, encoding="utf-8")
    print(f"Wrote {MODEL_PATH.relative_to(ROOT)} ({len(text.encode()):,} bytes): {summary}")


if __name__ == "__main__":
    main()
