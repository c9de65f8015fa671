"""Benchmark of the tagger: index build and messages per second with 100,000 accounts.

    .venv/bin/python bench/tagging.py                     # 100,000 accounts, 50,000 messages
    .venv/bin/python bench/tagging.py --accounts 5000 --messages 5000

Accounts come from the same deterministic generator as bench/foundation.py; messages are the
labelled messages of tests/data/tagging with their companies swapped for generated accounts, so
account matching works against the full index. It reports the index build time and messages per
second in-process on one core, and the wall time of `icp-bot tag FILE` over the same messages
(start-up, database read and index build included).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.foundation import ICP_BOT, make_export
from bot.settings import bundled_resource
from insights.config import load_config
from insights.matching import AccountRef
from insights.normalize import normalize_domain
from insights.tagging import Tagger


def messages(rows: list[dict[str, str]], count: int, seed: int = 5) -> list[str]:
    """Labelled messages with their CRM companies replaced by generated account names."""
    rng = random.Random(seed)
    with bundled_resource("sample_accounts.csv").open(encoding="utf-8") as handle:
        sample_names = sorted({r["name"] for r in csv.DictReader(handle)}, key=len, reverse=True)
    texts = []
    for name in ("labelled.jsonl", "holdout.jsonl"):
        path = ROOT / "tests" / "data" / "tagging" / name
        texts += [json.loads(line)["text"] for line in path.read_text("utf-8").splitlines() if line]
    out = []
    for i in range(count):
        text = texts[i % len(texts)]
        for sample in sample_names:
            if sample in text:
                text = text.replace(sample, rng.choice(rows)["Name"])
                break
        out.append(text)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--out", default=str(ROOT / "bench-results" / "tagging.json"))
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="icp-bench-tag-"))
    export = scratch / "accounts.csv"
    rows = make_export(export, args.accounts)
    refs = [
        AccountRef(i, r["Name"], normalize_domain(r["Website"]) if r["Website"] else None)
        for i, r in enumerate(rows)
    ]
    taxonomy = load_config(bundled_resource("icp.example.yml")).taxonomy

    started = time.perf_counter()
    tagger = Tagger(refs, taxonomy)
    build = time.perf_counter() - started
    batch = messages(rows, args.messages)
    tagger.tag(batch[0])  # load the word list once, as a running bot would have
    started = time.perf_counter()
    outcomes = sum(tagger.tag(text).kind is not None for text in batch)
    in_process = time.perf_counter() - started

    file = scratch / "messages.txt"
    file.write_text("\n".join(m.replace("\n", " ") for m in batch) + "\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ICP_BOT_", "DATABASE_URL"))}
    env["DATABASE_URL"] = f"sqlite:///{scratch / 'bench.db'}"
    imported = subprocess.run([str(ICP_BOT), "accounts", "import", str(export)], env=env, cwd=scratch,
                              capture_output=True, text=True, check=False)  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    started = time.perf_counter()
    tagged = subprocess.run([str(ICP_BOT), "tag", str(file), "--json"], env=env, cwd=scratch,
                            capture_output=True, text=True, check=False)  # fmt: skip
    cli = time.perf_counter() - started
    assert tagged.returncode == 0, tagged.stderr
    assert len(tagged.stdout.splitlines()) == len(batch)

    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "accounts": len(refs),
        "messages": len(batch),
        "outcomes_tagged": outcomes,
        "index_build_seconds": round(build, 2),
        "in_process_messages_per_second": round(len(batch) / in_process),
        "cli_seconds": round(cli, 1),
        "cli_messages_per_second": round(len(batch) / cli),
    }
    print(f"Machine: {result['machine']}")
    print(f"{len(refs):,} accounts: index built in {build:.2f} s")
    print(f"In-process, one core: {result['in_process_messages_per_second']:,} messages/s "
          f"({len(batch):,} messages, {outcomes:,} tagged as outcomes)")  # fmt: skip
    print(f"icp-bot tag FILE --json: {cli:.1f} s for {len(batch):,} messages = "
          f"{result['cli_messages_per_second']:,} messages/s, start-up and index build included")  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(f"Wrote {out}")


if __name__ == "__main__":
    main()
