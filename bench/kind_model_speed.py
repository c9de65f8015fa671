"""Messages per second of `Tagger.tag` with and without the kind model, measured in turns.

    .venv/bin/python bench/kind_model_speed.py --accounts 5000 --messages 5000

The same accounts and messages as bench/tagging.py (in-process part only). The two taggers are
timed in alternating rounds and the best round of each is kept, so a busy machine (a CI run on
the other core) weighs on both alike.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.foundation import make_export
from bench.tagging import messages
from bot.settings import bundled_resource
from insights.config import load_config
from insights.matching import AccountRef
from insights.normalize import normalize_domain
from insights.tagging import Tagger


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=5000)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rows = make_export(Path(tempfile.mkdtemp(prefix="icp-bench-kind-")) / "accounts.csv", args.accounts)
    refs = [
        AccountRef(i, r["Name"], normalize_domain(r["Website"]) if r["Website"] else None)
        for i, r in enumerate(rows)
    ]
    taxonomy = load_config(bundled_resource("icp.example.yml")).taxonomy
    taggers = {
        "rules only": Tagger(refs, taxonomy, kind_model=False),
        "rules + model": Tagger(refs, taxonomy),
    }
    batch = messages(rows, args.messages)
    best = dict.fromkeys(taggers, 0.0)
    outcomes = dict.fromkeys(taggers, 0)
    for tagger in taggers.values():
        tagger.tag(batch[0])
    for _ in range(args.rounds):
        for name, tagger in taggers.items():
            started = time.perf_counter()
            outcomes[name] = sum(tagger.tag(text).kind is not None for text in batch)
            best[name] = max(best[name], len(batch) / (time.perf_counter() - started))
    for name in taggers:
        tagged = f"{outcomes[name]:,} of {len(batch):,} tagged as outcomes"
        print(f"{name:<14} {best[name]:>8,.0f} messages/s  ({tagged})")
    print(f"the model costs {1 - best['rules + model'] / best['rules only']:.0%} of the throughput")


if __name__ == "__main__":
    main()
