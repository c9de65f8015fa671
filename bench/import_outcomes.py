"""Benchmark P4, import: 1,000,000 CRM deals through `icp-bot outcomes import`, beside pandas.

    .venv/bin/python bench/import_outcomes.py                  # SQLite, 100,000 accounts, 1,000,000 deals
    .venv/bin/python bench/import_outcomes.py --postgres postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/import_outcomes.py --rows 100000    # a medium run
    .venv/bin/python bench/import_outcomes.py --small          # 2,000 accounts, 20,000 deals (CI)

Data (deterministic, cached in bench-results/cache/): the accounts of bench/foundation.py's
generator, and a Salesforce Opportunity export with the contract's columns (`Id, Name,
Account.Name, StageName, CloseDate, Amount, Type, Loss_Reason__c, Description`) of deals closed
over the two years up to 2026-11-22 plus the open pipeline: new business won and lost, renewals
(most kept), upsells and expansions, a few deals closed lost as "Duplicate", loss reasons as reps
write them (picklist values and short free text, which the import reads with the tagger),
descriptions on some deals, amounts, and a handful of account names the CRM has but the account
export had not (kept as written).

Each database is fresh (a SQLite file, or a scratch PostgreSQL schema dropped after) and holds the
accounts, imported first with the real `icp-bot accounts import`. Then, each in its own
subprocess, timed by wall clock from spawn to exit (Python start-up and imports included):
- import: `icp-bot outcomes import FILE` (the child calls `bot.cli.main`, the entry point of the
  `icp-bot` script, so that it can report its own peak memory);
- re-import: the same command and file again (idempotent: nothing changes), time only; skipped
  with --no-reimport, which the one-command benchmark passes to stay within its time;
- floor: `pandas.read_csv(FILE)` then `DataFrame.to_sql("floor_outcomes", engine,
  if_exists="replace", index=False, ...)` into the same database, with pandas' fast path for the
  database (see FLOOR_WRITE).
Memory is each child's peak resident set size, VmHWM from /proc/self/status read at its end.
Results are printed and written to bench-results/import_outcomes.json (--json PATH).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench-results"
CACHE = RESULTS / "cache"
TEAM = "TBENCH"
ICP_BOT = Path(sys.executable).with_name("icp-bot")
TARGET_RATIO = 1.5
HEADER = ("Id", "Name", "Account.Name", "StageName", "CloseDate", "Amount", "Type", "Loss_Reason__c",
          "Description")  # fmt: skip
LAST_CLOSE = date(2026, 11, 22)  # the history ends on this Sunday
SPAN_DAYS = 730
# pandas' to_sql per database: plain executemany of one INSERT (method=None) is its fast path on
# both (SQLite's executemany, psycopg's pipelined executemany); "multi" (one INSERT with many VALUES
# rows) measured slower on both here. Rows per chunk.
FLOOR_WRITE: dict[str, dict[str, Any]] = {
    "sqlite": {"method": None, "chunksize": 50_000},
    "postgresql": {"method": None, "chunksize": 50_000},
}
_MARK = "@@bench@@ "  # the line of a child's stdout that carries its measurements

# --- what the generated export says ----------------------------------------------------------

_OPEN_STAGES = (("Prospecting", 3), ("Qualification", 4), ("Needs Analysis", 2), ("Value Proposition", 1),
                ("Proposal/Price Quote", 2), ("Negotiation/Review", 2))  # fmt: skip
_PRODUCTS = ("Platform", "Forecasting", "Analytics", "Enterprise", "Pilot", "Team plan", "Data hub",
             "EMEA rollout", "Sales cloud", "Insights")  # fmt: skip
_EXPANSIONS = ("Seats expansion", "Add-on: Forecasting", "Upsell", "Add-on: Analytics", "New division")
# Loss reasons as they arrive: picklist values (some in the import's own picklist map, most read
# by the tagger) and short free text a rep typed into a text field. Weighted.
_LOSS_REASONS = (
    ("Price", 16), ("Lost to Competitor", 14), ("No Decision / Non-Responsive", 12), ("Budget", 9),
    ("Timing", 7), ("Product / Feature Gap", 7), ("Security / Compliance", 3), ("Integration", 3),
    ("Champion Left", 3), ("Lack of Adoption", 3), ("No Need", 2), ("Other", 3),
    ("Too expensive", 2), ("Went with Gong", 2), ("Chose Clari, cheaper", 1),
    ("Missing Salesforce integration", 1), ("Budget cut after reorg", 1), ("Went dark after demo", 1),
    ("Procurement stalled", 1), ("Not a fit for their team size", 1), ("", 8),
)  # fmt: skip
_RENEWAL_LOSS_REASONS = (
    ("Lack of Adoption", 10), ("Price", 6), ("Budget", 6), ("Lost to Competitor", 5),
    ("Champion Left", 5), ("Acquired", 2), ("Support issues", 2), ("Moved to Gainsight", 2),
    ("Low usage, only 3 of 25 seats active", 1), ("No Need", 2), ("", 5),
)  # fmt: skip
_DESCRIPTIONS = (
    "Procurement asked for 35% off list; we held at 15%.",
    "Went with Gong after a three-week bake-off; they bundled call recording.",
    "Champion stopped replying after the steering committee.",
    "Failed their vendor risk assessment: no EU data residency.",
    "Needed a native Guidewire integration we don't have.",
    "Budget frozen until next fiscal year.",
    "Revisit in Q2 after their reorg.",
    "Clari was already in place in their sales org.",
    "Chose a cheaper tool bundled with their CRM.",
    "Our VP sponsor left; new leadership paused projects.",
    "Three-year platform deal; security review passed in two weeks.",
    "Replaced spreadsheets for 40 RevOps users.",
    "Beat Clari on forecast accuracy in the pilot.",
    "Inbound from the webinar.",
    "Small team, fast cycle.",
    "Renewed for two years at +5% uplift.",
    "Flat renewal, multi-year.",
    "Only a handful of seats active in the last quarter.",
    "Moving to Gainsight as part of a CS platform consolidation.",
    "Added 60 seats for the wealth management team.",
    "Expanded to the outpatient division.",
    "Largest deal of the quarter; displaced Clari.",
    "Core banking connector missing.",
    "Went with Outreach; they already use it for sequencing.",
    "Security questionnaire took six weeks.",
    "Pilot succeeded, rolled out to the whole team.",
)
_UNKNOWN_ACCOUNTS = 20  # names the CRM has that the account export did not (merged, deleted)


def _weighted(pairs: tuple[tuple[str, int], ...]) -> tuple[list[str], list[int]]:
    return [p[0] for p in pairs], [p[1] for p in pairs]


def cached_accounts(count: int, cache: Path = CACHE) -> tuple[Path, list[str]]:
    """bench/foundation.py's export of `count` accounts (the file every part uses) and its names."""
    from bench.accounts_copy import cached_export

    path, rows = cached_export(count, cache)
    return path, [row["Name"] for row in rows]


class _Deals:
    """The deals of the generated export, one row at a time (deterministic for a seed)."""

    def __init__(self, names: list[str], seed: int) -> None:
        self.rng = random.Random(seed)
        self.names = names
        self.unknown = [
            f"Zqx {self.rng.choice(('Holdings', 'Group', 'Partners'))} {i}" for i in range(_UNKNOWN_ACCOUNTS)
        ]
        self.open_stages = _weighted(_OPEN_STAGES)
        self.loss = _weighted(_LOSS_REASONS)
        self.renewal_loss = _weighted(_RENEWAL_LOSS_REASONS)

    def row(self, i: int) -> tuple[str, ...]:
        """Id, Name, Account.Name, StageName, CloseDate, Amount, Type, Loss_Reason__c, Description."""
        rng = self.rng
        account = self.names[int(len(self.names) * rng.random() ** 1.6)]  # some accounts have many deals
        if rng.random() < 0.001:
            account = rng.choice(self.unknown)
        roll = rng.random()
        deal_type = "New Business" if roll < 0.55 else ("Renewal" if roll < 0.85 else "Existing Business")
        if rng.random() < 0.04:
            deal_type = ""  # no type: new business
        if rng.random() < 0.08:
            stage = rng.choices(*self.open_stages)[0]
            close = LAST_CLOSE + timedelta(days=rng.randint(1, 180))
        else:
            won_chance = {"Renewal": 0.86, "Existing Business": 0.7}.get(deal_type, 0.38)
            stage = "Closed Won" if rng.random() < won_chance else "Closed Lost"
            close = LAST_CLOSE - timedelta(days=rng.randrange(SPAN_DAYS))
        reason = ""
        if stage == "Closed Lost":
            if rng.random() < 0.012:
                reason = "Duplicate"
            elif deal_type in ("Renewal", "Existing Business"):
                reason = rng.choices(*self.renewal_loss)[0]
            else:
                reason = rng.choices(*self.loss)[0]
        description = rng.choice(_DESCRIPTIONS) if rng.random() < 0.3 else ""
        if deal_type == "Renewal":
            deal_name = f"{account} - Renewal FY{close.year % 100 + 1}"
        else:
            products = _EXPANSIONS if deal_type == "Existing Business" else _PRODUCTS
            deal_name = f"{account} - {rng.choice(products)}"
        amount = str(round(rng.lognormvariate(10.4, 0.8), -2)).removesuffix(".0")
        if rng.random() < 0.05:
            amount = ""
        return (f"006{i:015d}", deal_name, account, stage, close.isoformat(), amount, deal_type, reason,
                description)  # fmt: skip


def make_opportunities(path: Path, rows: int, names: list[str], seed: int = 13) -> dict[str, Any]:
    """Write a Salesforce Opportunity export of `rows` deals on `names`; return what it holds."""
    deals = _Deals(names, seed)
    counts = {"won": 0, "lost": 0, "renewal_kept": 0, "open": 0, "not_an_outcome": 0}
    by_kind = {"win": 0, "loss": 0, "renewal_loss": 0, "customer_win": 0}
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for i in range(rows):
            row = deals.row(i)
            writer.writerow(row)
            stage, deal_type, reason = row[3], row[6], row[7]
            if not stage.startswith("Closed"):
                counts["open"] += 1
            elif reason == "Duplicate":
                counts["not_an_outcome"] += 1
            elif stage == "Closed Won":
                counts["won"] += 1
                if deal_type == "Renewal":
                    counts["renewal_kept"] += 1
                else:
                    by_kind["customer_win" if deal_type == "Existing Business" else "win"] += 1
            else:
                counts["lost"] += 1
                by_kind["loss" if deal_type in ("New Business", "") else "renewal_loss"] += 1
    return {"rows": rows, "closed": counts["won"] + counts["lost"], **counts, "by_kind": by_kind,
            "seed": seed, "accounts": len(names)}  # fmt: skip


def cached_opportunities(rows: int, names: list[str], cache: Path = CACHE) -> tuple[Path, dict[str, Any]]:
    """The export of `rows` deals on these accounts, generated once into bench-results/cache/."""
    path = cache / f"salesforce_opportunities_{rows}_on_{len(names)}_seed13.csv"
    stats_path = path.with_suffix(".json")
    if path.exists() and stats_path.exists():
        stats = json.loads(stats_path.read_text(encoding="utf-8"))
        if stats.get("rows") == rows and stats.get("accounts") == len(names):
            return path, stats
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    stats = make_opportunities(partial, rows, names)
    partial.replace(path)
    stats_path.write_text(json.dumps(stats, indent=2), encoding="utf-8")
    return path, stats


# --- the measured children ----------------------------------------------------------------------


def _rss_mb() -> float:
    """This process's peak resident set size in MB (VmHWM, which exec resets), else ru_maxrss."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_import(file: str) -> None:
    """`icp-bot outcomes import FILE`, as the console script runs it (DATABASE_URL from the env)."""
    from bot.cli import main

    code = main(["outcomes", "import", file])
    sys.stdout.flush()
    print(_MARK + json.dumps({"exit": code, "peak_rss_mb": _rss_mb()}))


def child_floor(url: str, file: str, dialect: str) -> None:
    """The floor: pandas reads the file and writes it to one table, nothing else."""
    import pandas as pd

    from storage.engine import make_engine

    engine = make_engine(url)
    frame = pd.read_csv(file)
    written = frame.to_sql("floor_outcomes", engine, if_exists="replace", index=False, **FLOOR_WRITE[dialect])
    engine.dispose()
    print(_MARK + json.dumps({"rows": len(frame), "written": written, "peak_rss_mb": _rss_mb()}))


def run_child(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, dict[str, Any], str]:
    """Run this file as a child; its wall time, its measurements and its stdout."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, *args], env=env, cwd=cwd, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0 or _MARK not in done.stdout:
        raise SystemExit(f"the child {args[:2]} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    head, _, tail = done.stdout.rpartition(_MARK)
    return seconds, json.loads(tail), head


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [str(ICP_BOT), *args], env=env, cwd=cwd, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"icp-bot {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return time.perf_counter() - started, done.stdout


def _note_counts(url: str) -> dict[str, int]:
    from sqlalchemy import text

    from storage.engine import make_engine

    engine = make_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT status, count(*) FROM notes WHERE team_id = :t AND channel = 'crm' GROUP BY status"),
            {"t": TEAM},
        ).all()
    engine.dispose()
    return {str(status): int(n) for status, n in rows}


def bench(
    label: str,
    url: str,
    accounts_file: Path,
    deals_file: Path,
    stats: dict[str, Any],
    *,
    reimport: bool = True,
) -> dict[str, Any]:
    from bench.accounts_copy import load_accounts

    workdir = Path(tempfile.mkdtemp(prefix="icp-bench-import-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ICP_BOT_", "DATABASE_URL"))}
    env.update(DATABASE_URL=url, ICP_BOT_TEAM_ID=TEAM, PYTHONPATH=str(ROOT))
    try:
        if label == "postgresql":
            _cli(["db", "upgrade"], env, workdir)
        account_seconds, how = load_accounts(
            url, accounts_file, TEAM, lambda: _cli(["accounts", "import", str(accounts_file)], env, workdir)
        )
        print(f"[{label}] {stats['accounts']:,} accounts {how} in {account_seconds:.1f} s", flush=True)

        seconds, child, out = run_child(["--child", "import", "--file", str(deals_file)], env, workdir)
        if child["exit"] != 0:
            raise SystemExit(f"icp-bot outcomes import exited {child['exit']}:\n{out}")
        notes = _note_counts(url)
        print(f"[{label}] import {seconds:.1f} s: {out.strip().splitlines()[0]}", flush=True)
        again: float | None = None
        if reimport:
            again, child2, out2 = run_child(["--child", "import", "--file", str(deals_file)], env, workdir)
            unchanged = f" 0 new, 0 updated, {stats['closed']:,} unchanged." in out2
            if child2["exit"] != 0 or not unchanged:
                raise SystemExit(f"the re-import changed something:\n{out2}")
            print(f"[{label}] re-import {again:.1f} s", flush=True)
        floor_seconds, floor, _ = run_child(
            ["--child", "floor", "--url", url, "--file", str(deals_file), "--dialect", label], env, workdir
        )
        print(f"[{label}] floor {floor_seconds:.1f} s", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    rows = stats["rows"]
    return {
        "database": label,
        "rows": rows,
        "accounts": stats["accounts"],
        "account_import_seconds": round(account_seconds, 2),
        "accounts_loaded": how,  # "imported", or "copied" from an earlier part's import
        "import": {
            "seconds": round(seconds, 2),
            "rows_per_second": round(rows / seconds),
            "peak_rss_mb": round(child["peak_rss_mb"], 1),
            "summary": out.strip().splitlines(),
        },
        "reimport_unchanged_seconds": None if again is None else round(again, 2),
        "floor": {
            "seconds": round(floor_seconds, 2),
            "rows_per_second": round(rows / floor_seconds),
            "peak_rss_mb": round(floor["peak_rss_mb"], 1),
            "rows_written": floor["rows"],
            **FLOOR_WRITE[label],
        },
        "ratio": round(seconds / floor_seconds, 3),
        "notes": notes.get("active", 0),
        "notes_by_status": notes,
        "expected_notes": stats["closed"],
        "targets": {"ratio_at_most": TARGET_RATIO, "ratio_met": seconds / floor_seconds <= TARGET_RATIO},
    }


def _postgres(
    base: str, accounts_file: Path, deals_file: Path, stats: dict[str, Any], *, reimport: bool
) -> dict[str, Any]:
    from sqlalchemy import text

    from storage.engine import make_engine, normalize_database_url

    schema = f"icpbot_bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = normalize_database_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        rendered = url.render_as_string(hide_password=False)
        return bench("postgresql", rendered, accounts_file, deals_file, stats, reimport=reimport)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, help="deals in the export (default 1,000,000; --small 20,000)")
    parser.add_argument("--accounts", type=int, help="accounts (default 100,000; --small 2,000)")
    parser.add_argument("--small", action="store_true", help="a quick run for CI: SQLite unless --postgres")
    parser.add_argument("--postgres", help="also run against this PostgreSQL URL (a scratch schema is used)")
    parser.add_argument("--json", default=str(RESULTS / "import_outcomes.json"), help="where results go")
    parser.add_argument("--cache", default=str(CACHE), help="where generated exports are kept")
    parser.add_argument(
        "--no-reimport", action="store_true", help="skip timing a second, unchanged import (bench/run.py)"
    )
    parser.add_argument("--child", choices=("import", "floor"), help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--dialect", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "import":
        child_import(args.file)
        return
    if args.child == "floor":
        child_floor(args.url, args.file, args.dialect)
        return

    rows = args.rows or (20_000 if args.small else 1_000_000)
    accounts = args.accounts or (2_000 if args.small else 100_000)
    started = time.perf_counter()
    accounts_file, names = cached_accounts(accounts, Path(args.cache))
    deals_file, stats = cached_opportunities(rows, names, Path(args.cache))
    print(
        f"{rows:,} deals on {accounts:,} accounts: {deals_file} ({deals_file.stat().st_size / 1e6:.0f} MB; "
        f"{stats['closed']:,} closed, {stats['open']:,} open, {stats['not_an_outcome']:,} duplicates; "
        f"ready in {time.perf_counter() - started:.1f} s)",
        flush=True,
    )

    scratch = Path(tempfile.mkdtemp(prefix="icp-bench-import-db-"))
    try:
        sqlite_url = f"sqlite:///{scratch / 'import.db'}"
        results = [
            bench("sqlite", sqlite_url, accounts_file, deals_file, stats, reimport=not args.no_reimport)
        ]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if args.postgres:
        results.append(
            _postgres(args.postgres, accounts_file, deals_file, stats, reimport=not args.no_reimport)
        )

    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"\nMachine: {machine}")
    columns = ("rows", "import s", "rows/s", "floor s", "rows/s", "ratio", "import MB", "floor MB",
               "re-import s")  # fmt: skip
    header = f"{'database':<11} " + " ".join(f"{c:>11}" for c in columns)
    print(header)
    print("-" * len(header))
    for r in results:
        cells = (
            f"{r['rows']:,}", f"{r['import']['seconds']:.1f}", f"{r['import']['rows_per_second']:,}",
            f"{r['floor']['seconds']:.1f}", f"{r['floor']['rows_per_second']:,}", f"{r['ratio']:.2f}",
            f"{r['import']['peak_rss_mb']:.0f}", f"{r['floor']['peak_rss_mb']:.0f}",
            "—" if r["reimport_unchanged_seconds"] is None else f"{r['reimport_unchanged_seconds']:.1f}",
        )  # fmt: skip
        print(f"{r['database']:<11} " + " ".join(f"{c:>11}" for c in cells))
    print(f"Target: import <= {TARGET_RATIO} x the pandas floor's time.")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    document = {"machine": machine, "generated": stats, "results": results}
    out.write_text(json.dumps(document, indent=2), encoding="utf-8")
    print(f"Wrote {out}")


if __name__ == "__main__":
    main()
