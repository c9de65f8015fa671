"""Benchmark of the foundation: importing 100,000 accounts and the fit check over them.

    .venv/bin/python bench/foundation.py                     # SQLite, 100,000 accounts
    .venv/bin/python bench/foundation.py --postgres postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/foundation.py --accounts 5000     # a quick run

It writes a deterministic Salesforce-style export, imports it with the real `icp-bot accounts
import` command (a subprocess, so start-up is included), re-imports it (nothing changes), then
times the fit check two ways: in-process through the use case the Slack command calls (p50/p99
over a mix of exact names, domains, short forms, typos and unknown names), and as whole
`icp-bot fit NAME --json` commands. Results are printed and written as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.settings import bundled_resource
from insights.config import load_config
from insights.errors import AccountNotFoundError
from insights.service import fit_for
from storage.engine import make_engine, make_session_factory, normalize_database_url

ICP_BOT = Path(sys.executable).with_name("icp-bot")
TEAM = "TBENCH"
_SYLLABLES = (
    "ac", "bel", "cor", "dan", "el", "fen", "gar", "hol", "is", "jun", "kel", "lor", "mar", "nor",
    "ol", "par", "quin", "ros", "sol", "tor", "ul", "val", "wes", "xen", "yar", "zen", "bri", "cas",
)  # fmt: skip
_NOUNS = (
    "Systems", "Labs", "Analytics", "Health", "Logistics", "Capital", "Foods", "Energy", "Works",
    "Software", "Partners", "Robotics", "Media", "Bank", "Clinic", "Freight", "Retail", "Cloud",
)  # fmt: skip
_SUFFIXES = ("Inc", "Corp", "Ltd", "LLC", "GmbH", "Oy", "AB", "", "", "")
_INDUSTRIES = (
    "Software", "Financial Services", "Healthcare", "Manufacturing", "Retail", "Education", "Media",
    "Logistics", "Energy", "Telecommunications", "Professional Services", "Government",
)  # fmt: skip
_COUNTRIES = ("United States", "USA", "US", "Canada", "United Kingdom", "UK", "Finland", "Sweden", "Germany")


def make_export(path: Path, count: int, seed: int = 7) -> list[dict[str, str]]:
    """Write a Salesforce Account export of `count` unique companies; return its rows."""
    rng = random.Random(seed)
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    while len(rows) < count:
        stem = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))).capitalize()
        words = f"{stem} {rng.choice(_NOUNS)}" if rng.random() < 0.7 else stem
        if words.lower() in seen:
            continue
        seen.add(words.lower())
        suffix = rng.choice(_SUFFIXES)
        employees = int(rng.lognormvariate(5.5, 1.6))
        rows.append(
            {
                "Id": f"001{len(rows):012d}",
                "Name": f"{words} {suffix}".strip(),
                "Website": f"https://www.{words.lower().replace(' ', '')}.com" if rng.random() < 0.9 else "",
                "Industry": rng.choice(_INDUSTRIES) if rng.random() < 0.95 else "",
                "NumberOfEmployees": str(employees) if rng.random() < 0.93 else "",
                "AnnualRevenue": str(employees * rng.randint(80_000, 400_000)) if rng.random() < 0.85 else "",
                "BillingCountry": rng.choice(_COUNTRIES),
                "Type": rng.choice(("Customer", "Prospect", "Prospect", "Former Customer")),
                "Owner.Name": f"Rep {rng.randint(1, 60)}",
            }
        )
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return rows


def queries(rows: list[dict[str, str]], n: int, seed: int = 11) -> list[tuple[str, str]]:
    """A realistic mix of what people type: (kind, text)."""
    rng = random.Random(seed)
    out: list[tuple[str, str]] = []
    for i in range(n):
        row = rng.choice(rows)
        name = row["Name"]
        kind = ("exact", "loose", "domain", "short", "typo", "unknown")[i % 6]
        if kind == "loose":
            name = name.upper().replace(" ", "")
        elif kind == "domain" and row["Website"]:
            name = row["Website"].removeprefix("https://www.")
        elif kind == "short":
            name = name.split()[0]
        elif kind == "typo" and len(name) > 6:
            j = rng.randrange(1, len(name) - 2)
            name = name[:j] + name[j + 1] + name[j] + name[j + 2 :]
        elif kind == "unknown":
            name = f"Zzq{rng.randint(0, 10**6)} Holdings"
        out.append((kind, name))
    return out


def run_cli(
    args: list[str], env: dict[str, str], cwd: Path
) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    result = subprocess.run(
        [str(ICP_BOT), *args], env=env, cwd=cwd, capture_output=True, text=True, check=False
    )
    return time.perf_counter() - started, result


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def bench_database(
    label: str, url: str, export: Path, rows: list[dict[str, str]], n_queries: int
) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="icp-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ICP_BOT_")}
    env.update(DATABASE_URL=url, ICP_BOT_TEAM_ID=TEAM)
    if not url.startswith("sqlite"):
        _, upgraded = run_cli(["db", "upgrade"], env, workdir)
        assert upgraded.returncode == 0, upgraded.stderr

    first, result = run_cli(["accounts", "import", str(export)], env, workdir)
    assert result.returncode == 0, result.stderr
    again, result2 = run_cli(["accounts", "import", str(export)], env, workdir)
    assert result2.returncode == 0 and " 0 new, 0 updated" in result2.stdout, result2.stdout

    icp = load_config(bundled_resource("icp.example.yml")).icp
    engine = make_engine(url)
    factory = make_session_factory(engine)
    mix = queries(rows, n_queries)
    for _, q in mix[:20]:  # warm caches and the connection pool, as a running bot would be
        with contextlib.suppress(AccountNotFoundError):
            fit_for(factory, TEAM, q, icp)
    timings: dict[str, list[float]] = {}
    outcomes = {"matched": 0, "suggestions": 0}
    for kind, q in mix:
        started = time.perf_counter()
        try:
            fit_for(factory, TEAM, q, icp)
            outcomes["matched"] += 1
        except AccountNotFoundError:
            outcomes["suggestions"] += 1
        timings.setdefault(kind, []).append((time.perf_counter() - started) * 1000)
    engine.dispose()
    every = [t for ts in timings.values() for t in ts]

    cli_times = []
    for name in (
        rows[0]["Name"],
        rows[len(rows) // 2]["Website"].removeprefix("https://www."),
        "Zzq Unknown Co",
    ):
        elapsed, result = run_cli(["fit", name, "--json"], env, workdir)
        assert result.returncode in (0, 1), result.stderr
        cli_times.append(elapsed * 1000)

    return {
        "database": label,
        "accounts": len(rows),
        "import_seconds": round(first, 2),
        "import_rows_per_second": round(len(rows) / first),
        "reimport_unchanged_seconds": round(again, 2),
        "fit_in_process_ms": {
            "p50": round(percentile(every, 50), 2),
            "p99": round(percentile(every, 99), 2),
            "by_kind_p50": {k: round(statistics.median(v), 2) for k, v in timings.items()},
            "by_kind_max": {k: round(max(v), 2) for k, v in timings.items()},
            "queries": len(every),
            **outcomes,
        },
        "fit_cli_ms": {"median": round(statistics.median(cli_times), 1), "max": round(max(cli_times), 1)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=600)
    parser.add_argument("--postgres", help="also run against this PostgreSQL URL (a scratch schema is used)")
    parser.add_argument("--out", default=str(ROOT / "bench-results" / "foundation.json"))
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="icp-bench-data-"))
    export = scratch / "salesforce_accounts.csv"
    rows = make_export(export, args.accounts)
    print(f"Wrote {len(rows):,} accounts to {export} ({export.stat().st_size / 1e6:.1f} MB)")

    results = [bench_database("sqlite", f"sqlite:///{scratch / 'bench.db'}", export, rows, args.queries)]
    if args.postgres:
        schema = f"icpbot_bench_{uuid.uuid4().hex[:8]}"
        admin = make_engine(args.postgres)
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = normalize_database_url(args.postgres).update_query_dict({"options": f"-csearch_path={schema}"})
        try:
            results.append(
                bench_database(
                    "postgresql", url.render_as_string(hide_password=False), export, rows, args.queries
                )
            )
        finally:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            admin.dispose()

    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"\nMachine: {machine}")
    columns = ("accounts", "import s", "rows/s", "re-import s", "fit p50 ms", "fit p99 ms", "CLI fit ms")
    header = f"{'database':<11} " + " ".join(f"{c:>11}" for c in columns)
    print(header)
    print("-" * len(header))
    for r in results:
        f = r["fit_in_process_ms"]
        cells = (
            f"{r['accounts']:,}", r["import_seconds"], f"{r['import_rows_per_second']:,}",
            r["reimport_unchanged_seconds"], f["p50"], f["p99"], r["fit_cli_ms"]["median"],
        )  # fmt: skip
        print(f"{r['database']:<11} " + " ".join(f"{c!s:>11}" for c in cells))
    for r in results:
        print(f"{r['database']} fit p50 by query kind (ms): {r['fit_in_process_ms']['by_kind_p50']}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine, "results": results}, indent=2), encoding="utf-8")
    print(f"\nWrote {out}")


if __name__ == "__main__":
    main()
