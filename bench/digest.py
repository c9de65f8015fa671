"""Benchmark of the weekly digest over 1,000,000 outcomes and 100,000 accounts, beside a pandas floor.

    .venv/bin/python bench/digest.py                          # SQLite, 100,000 accounts, 1,000,000 notes
    .venv/bin/python bench/digest.py --postgres postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/digest.py --accounts 10000 --notes 100000   # a quick run

Data: the accounts of bench/foundation.py's generator, imported with the real account import (so
countries and numbers are normalised as in production), and notes spread over two years up to
Sunday 2026-11-22, written through the deal import's bulk insert: captured messages (most with
the tier stored at capture), CRM-imported outcomes (half without a stored tier, so the digest
scores their accounts), CRM duplicates of captured deals a few days apart, renewals kept, a few
retracted notes and notes without an account. A fresh database each run (a scratch schema on
PostgreSQL, dropped after); the accounts are copied from an earlier part's import when one was
kept (bench/accounts_copy.py), and the databases are filled side by side (set-up), then measured
one after the other.

Measured, each in a fresh Python subprocess, N times (median time, largest peak memory):
- floor: the plain pandas lower bound the issue names: one SQL join of every active note with
  its account (`pd.read_sql`), the local week computed in pandas, then a group-by of week, tier
  and kind. The tier is the one stored on the note: scoring 100,000 accounts in the floor would
  make it slower and flatter the ratio.
- digest: `insights.digest_service.build_digest` for Monday 2026-11-23 09:00 America/New_York.
Time is wall time of the work inside the child, after its imports (engine creation and every
query included). Memory is the child's peak resident set size, VmHWM from /proc/self/status read
at its end: the interpreter and pandas included (the RSS after imports is reported too). Not
ru_maxrss: on Linux a child's ru_maxrss (and RUSAGE_CHILDREN in the parent) starts from the
parent's peak at fork, which here is the data generator's.
Results: printed, and written to bench-results/digest.json. The SQLite file is removed after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TEAM = "TBENCH"
TIMEZONE = "America/New_York"
END = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)  # Monday 00:00 in New York: the data stops here
AS_OF = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)  # Monday 09:00 in New York
SPAN = timedelta(days=730)
TARGET_RATIO = 1 / 3
TARGET_MB = 500
REASONS = (
    "price", "budget", "product_gap", "integration", "security_compliance", "timing", "no_decision",
    "champion_loss", "poor_fit", "adoption", "support", "implementation", "sales_execution",
)  # fmt: skip
COMPETITORS = ("Gong", "Clari", "Gainsight", "Salesloft", "Outreach", "Totango", "ChurnZero", "People.ai")
WIN_CHANCE = {"A": 0.5, "B": 0.4, "C": 0.28, "D": 0.18}  # of a closed deal, by the account's tier


def _rss_mb() -> float:
    """This process's peak resident set size in MB: VmHWM, which exec resets (ru_maxrss of a
    child keeps the parent's peak from before the exec), else ru_maxrss."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# ---------------------------------------------------------------------------------------------
# Data


def make_database(url: str, accounts: int, notes: int, seed: int = 5) -> dict[str, Any]:  # noqa: PLR0915
    import pandas as pd

    from bench.accounts_copy import cached_export, load_accounts
    from bot.settings import bundled_resource
    from insights.config import load_config
    from insights.digest_service import account_tiers
    from insights.service import import_accounts, iter_accounts
    from storage.engine import bulk_write_cache, make_engine, make_session_factory
    from storage.repositories import NoteRepository
    from storage.schema import upgrade

    export, _ = cached_export(accounts)

    def import_them() -> None:
        importing = make_engine(url)
        upgrade(importing)
        import_accounts(make_session_factory(importing), TEAM, export.read_bytes(), export.name)
        importing.dispose()

    if not url.startswith("sqlite"):  # a copy goes into the migrated scratch schema
        migrating = make_engine(url)
        upgrade(migrating)
        migrating.dispose()
    account_seconds, how = load_accounts(url, export, TEAM, import_them)
    engine = make_engine(url)
    upgrade(engine)
    factory = make_session_factory(engine)
    icp = load_config(bundled_resource("icp.example.yml")).icp

    frame = pd.DataFrame(list(iter_accounts(factory, TEAM)))
    tiers = account_tiers(frame, icp)
    ids = frame["id"].tolist()
    names = frame["name"].tolist()
    rng = random.Random(seed)
    started = time.perf_counter()
    written = 0
    batch: list[dict[str, Any]] = []
    span = SPAN.total_seconds()
    now = datetime.now(UTC)
    tier_names = list(icp.tiers)
    # JSON values repeat: one object per distinct value, which the bulk insert serialises once.
    shared: dict[tuple[str, Any], Any] = {}
    kept: dict[str, str] = {"renewal": "kept"}
    no_details: dict[str, str] = {}

    def flush() -> None:
        # The deal import's bulk path (COPY on PostgreSQL, one executemany on SQLite).
        nonlocal batch
        if batch:
            columns = [c for c in batch[0] if c != "team_id"]
            repo.insert_rows(columns, [[r[c] for c in columns] for r in batch])
            batch = []

    # One transaction with a large page cache for every note, as the deal import writes them.
    with factory.begin() as session, bulk_write_cache(session.connection()):
        repo = NoteRepository(session, TEAM)
        while written < notes:
            i = rng.randrange(len(ids))
            account_id, name, tier = ids[i], names[i], str(tiers[i])
            has_account = rng.random() < 0.93
            posted = END - timedelta(seconds=rng.random() * span)
            roll = rng.random()
            if roll < 0.62:
                closed_win = rng.random() < WIN_CHANCE.get(tier, 0.3)
                kind: str | None = "win" if closed_win else "loss"
            elif roll < 0.72:
                kind = "renewal_loss"
            elif roll < 0.77:
                kind = "implementation_failure"
            elif roll < 0.90:
                kind = "customer_win"
            else:
                kind = None  # a renewal kept, from the CRM
            source = (
                "import"
                if kind is None or rng.random() < 0.25
                else ("form" if rng.random() < 0.03 else "message")
            )
            stored_tier: str | None = tier
            if rng.random() < 0.08:  # the tier when captured differed from today's
                stored_tier = rng.choice(tier_names)
            if source == "import" and rng.random() < 0.5:
                stored_tier = None
            if not has_account:
                stored_tier = None
            lost = kind in ("loss", "renewal_loss")
            picked = tuple(rng.sample(REASONS, rng.choice((0, 1, 1, 2)))) if lost else ()
            reasons = shared.setdefault(("reasons", picked), list(picked))
            competitor = (
                rng.choice(COMPETITORS) if kind in ("loss", "renewal_loss") and rng.random() < 0.4 else None
            )
            value = float(rng.randrange(5, 500) * 1000) if rng.random() < 0.6 else None
            amount = (
                None
                if value is None
                else shared.setdefault(("amount", value), {"value": value, "currency": "USD", "unit": "ARR"})
            )
            ts = f"{posted.timestamp():.6f}"
            row = {
                "team_id": TEAM,
                "channel": "CRM" if source == "import" else "C0DEALS",
                "ts": f"{ts}{written % 10}",
                "thread_ts": None,
                "user_id": "U0REP",
                "permalink": None
                if source == "import"
                else f"https://example.slack.com/archives/C0DEALS/p{ts}",
                "text": f"{(kind or 'renewal').replace('_', ' ').capitalize()}: {name}, thanks all",
                "kind": kind,
                "account": name if has_account else f"Prospect {i}",
                "account_id": account_id if has_account else None,
                "tier": stored_tier,
                "competitor": competitor,
                "reasons": reasons,
                "amount": amount,
                "confidence": 0.9,
                "status": "retracted" if rng.random() < 0.03 else "active",
                "source": source,
                "crm_id": f"006{written:012d}" if source == "import" else None,
                "details": kept if kind is None else no_details,
                "posted_at": posted,
                "created_at": now,
                "updated_at": now,
            }
            batch.append(row)
            written += 1
            if source == "message" and kind in ("win", "loss") and has_account and rng.random() < 0.1:
                # The same deal closed in the CRM a few days later: imported, it must count once.
                close = posted + timedelta(days=rng.uniform(-3, 4))
                batch.append({**row, "channel": "CRM", "ts": f"{close.timestamp():.6f}{written % 10}",
                              "permalink": None, "source": "import", "crm_id": f"006{written:012d}",
                              "posted_at": min(close, END - timedelta(seconds=1)), "amount": amount,
                              "tier": None})  # fmt: skip
                written += 1
            if len(batch) >= 20_000:
                flush()
        flush()
    note_seconds = time.perf_counter() - started
    with engine.connect() as connection:  # insert_rows skips a row whose channel + ts is taken
        stored = connection.exec_driver_sql(f"SELECT count(*) FROM notes WHERE team_id = '{TEAM}'").scalar()
    if stored != written:
        raise SystemExit(f"generated {written:,} notes but {stored:,} were stored (a repeated channel + ts?)")
    engine.dispose()
    return {"accounts": accounts, "accounts_loaded": how, "notes": written,
            "account_import_seconds": round(account_seconds, 1),
            "note_insert_seconds": round(note_seconds, 1)}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# The two measurements (each runs in a fresh subprocess)


def child_floor(url: str) -> dict[str, Any]:
    import pandas as pd
    from sqlalchemy import text

    from storage.engine import make_engine

    baseline = _rss_mb()
    started = time.perf_counter()
    engine = make_engine(url)
    query = text(
        "SELECT n.posted_at, n.kind, n.tier, n.account_id, a.industry "
        "FROM notes n LEFT JOIN accounts a ON a.id = n.account_id "
        "WHERE n.team_id = :team AND n.status = 'active'"
    )
    with engine.connect() as connection:
        frame = pd.read_sql(query, connection, params={"team": TEAM})
    read = time.perf_counter() - started
    posted = pd.to_datetime(frame["posted_at"], utc=True, format="ISO8601")
    local = posted.dt.tz_convert(TIMEZONE).dt.tz_localize(None)
    frame["week"] = local.dt.normalize() - pd.to_timedelta(local.dt.day_of_week, unit="D")
    table = frame.groupby(["week", "tier", "kind"], dropna=False).size()
    seconds = time.perf_counter() - started
    engine.dispose()
    return {"seconds": seconds, "read_sql_seconds": round(read, 3), "peak_rss_mb": _rss_mb(),
            "rss_after_imports_mb": baseline, "rows": len(frame), "groups": len(table)}  # fmt: skip


def child_digest(url: str) -> dict[str, Any]:
    from bot.settings import bundled_resource
    from insights.config import load_config
    from insights.digest_service import build_digest
    from storage.engine import make_engine, make_session_factory

    config = load_config(bundled_resource("icp.example.yml"))
    config = config.model_copy(update={"digest": config.digest.model_copy(update={"timezone": TIMEZONE})})
    baseline = _rss_mb()
    started = time.perf_counter()
    engine = make_engine(url)
    digest = build_digest(make_session_factory(engine), TEAM, config, AS_OF)
    seconds = time.perf_counter() - started
    engine.dispose()
    return {"seconds": seconds, "peak_rss_mb": _rss_mb(), "rss_after_imports_mb": baseline,
            "period": digest.period.start.isoformat(), "outcomes_in_period": digest.outcomes_in_period,
            "closed_in_13_weeks": sum(w.wins + w.losses for w in digest.weekly),
            "merged_from_crm": digest.merged_from_crm}  # fmt: skip


def measure(which: str, url: str, repeat: int) -> dict[str, Any]:
    runs = []
    for _ in range(repeat):
        done = subprocess.run(
            [sys.executable, __file__, "--child", which, "--url", url],
            capture_output=True, text=True, check=False, cwd=ROOT,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"the {which} measurement failed:\n{done.stderr}")
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    result = dict(runs[-1])
    result["seconds"] = round(statistics.median(r["seconds"] for r in runs), 3)
    result["all_seconds"] = [round(r["seconds"], 3) for r in runs]
    result["peak_rss_mb"] = round(max(r["peak_rss_mb"] for r in runs), 1)
    result["rss_after_imports_mb"] = round(result["rss_after_imports_mb"], 1)
    return result


def bench(label: str, url: str, data: dict[str, Any], repeat: int) -> dict[str, Any]:
    """Measure the floor and the digest over a database `make_database` filled."""
    floor = measure("floor", url, repeat)
    digest = measure("digest", url, repeat)
    ratio = digest["seconds"] / floor["seconds"]
    return {
        "database": label,
        **data,
        "floor": floor,
        "digest": digest,
        "ratio": round(ratio, 3),
        "targets": {
            "ratio_at_most": round(TARGET_RATIO, 3),
            "ratio_met": ratio <= TARGET_RATIO,
            "peak_mb_below": TARGET_MB,
            "memory_met": digest["peak_rss_mb"] < TARGET_MB,
        },
    }


def main() -> None:  # noqa: PLR0915
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--notes", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="fresh-process runs per measurement")
    parser.add_argument("--postgres", help="also run against this PostgreSQL URL (a scratch schema is used)")
    parser.add_argument("--out", default=str(ROOT / "bench-results" / "digest.json"))
    parser.add_argument("--child", choices=("floor", "digest"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = child_floor(args.url) if args.child == "floor" else child_digest(args.url)
        print(json.dumps(result))
        return

    from sqlalchemy import text

    from storage.engine import make_engine, normalize_database_url

    scratch = Path(tempfile.mkdtemp(prefix="icp-bench-digest-"))
    databases = {"sqlite": f"sqlite:///{scratch / 'digest.db'}"}
    schema = f"icpbot_bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(args.postgres) if args.postgres else None
    try:
        if admin is not None:
            with admin.begin() as connection:
                connection.execute(text(f'CREATE SCHEMA "{schema}"'))
            scoped = normalize_database_url(args.postgres).update_query_dict(
                {"options": f"-csearch_path={schema}"}
            )
            databases["postgresql"] = scoped.render_as_string(hide_password=False)
        # The databases are filled side by side (one process each: generating a million notes is
        # set-up, not a measurement), then measured one after the other on a quiet machine.
        print(f"generating {args.accounts:,} accounts and {args.notes:,} notes in {', '.join(databases)} ...",
              flush=True)  # fmt: skip
        with ProcessPoolExecutor(len(databases)) as pool:
            filling = {label: pool.submit(make_database, url, args.accounts, args.notes)
                       for label, url in databases.items()}  # fmt: skip
            data = {label: future.result() for label, future in filling.items()}
        results = []
        for label, url in databases.items():
            print(f"[{label}] {data[label]}", flush=True)
            results.append(bench(label, url, data[label], args.repeat))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)  # half a gigabyte
        if admin is not None:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            admin.dispose()

    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"\nMachine: {machine}")
    columns = ("notes", "floor s", "digest s", "ratio", "floor MB", "digest MB")
    header = f"{'database':<11} " + " ".join(f"{c:>10}" for c in columns)
    print(header)
    print("-" * len(header))
    for r in results:
        cells = (
            f"{r['notes']:,}", f"{r['floor']['seconds']:.2f}", f"{r['digest']['seconds']:.2f}",
            f"{r['ratio']:.2f}", f"{r['floor']['peak_rss_mb']:.0f}", f"{r['digest']['peak_rss_mb']:.0f}",
        )  # fmt: skip
        print(f"{r['database']:<11} " + " ".join(f"{c:>10}" for c in cells))
    print(f"Targets: digest <= {TARGET_RATIO:.2f} x floor time and < {TARGET_MB} MB peak RSS.")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine, "results": results}, indent=2), encoding="utf-8")
    print(f"Wrote {out}")


if __name__ == "__main__":
    main()
