"""The whole benchmark, one command: P1-P5, each figure beside its floor measured in the same run.

    .venv/bin/python bench/run.py --postgres postgresql://postgres@127.0.0.1:5432/test   # full size
    .venv/bin/python bench/run.py --small                                                # CI size
    .venv/bin/python bench/run.py --only P1,P3 --markdown BENCHMARKS.md

Runs, one after another (each its own subprocess, so one figure's memory or threads never weigh
on the next):
- P1 fit answer   bench/slack_fit.py        signed /icp-fit to answer at the stand-in, vs a bare Bolt app
- P2 capture      bench/capture.py          sustained message events/s, vs a bare Bolt app acking them
- P3 digest       bench/digest.py           build_digest time and peak memory, vs a plain pandas floor
- P4 import       bench/import_outcomes.py  `icp-bot outcomes import`, vs pandas read_csv + to_sql
- P5 tagging      bench/tagging.py          messages/s on one core, in-process and through `icp-bot tag`

Full size: 100,000 accounts and 1,000,000 outcomes (P3, P4); `--small`: thousands of rows, for CI.
Every figure on SQLite, and on PostgreSQL with --postgres. Prints one table and writes it as JSON
(bench-results/summary.json); --markdown also writes it as a Markdown page with the machine and
the command.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench-results"


@dataclass(frozen=True)
class Row:
    figure: str
    database: str
    measure: str
    value: float
    floor: float | None
    ratio: float | None
    target: str
    met: bool | None
    unit: str


@dataclass(frozen=True)
class Bench:
    name: str
    script: str
    full: list[str]
    small: list[str]
    postgres: bool  # takes --postgres
    out_flag: str
    rows: Callable[[dict[str, Any]], Iterator[Row]]


def _p1(report: dict[str, Any]) -> Iterator[Row]:
    for r in report["results"]:
        seq = r["sequential"]
        for p in ("p50", "p99"):
            bot, bare = seq["bot_answer_ms"][p], seq["bare_answer_ms"][p]
            ratio = bot / bare
            yield Row(
                "P1 fit answer",
                r["database"],
                f"{p} latency",
                bot,
                bare,
                ratio,
                "ratio ≤ 2.0",
                ratio <= 2.0,
                "ms",
            )


def _p2(report: dict[str, Any]) -> Iterator[Row]:
    for r in report["results"]:
        bot, bare = r["bot"]["events_per_s"], r["bare"]["events_per_s"]
        checks = r["bot"]["checks"]
        clean = (
            all(checks.get(k, 0) == 0 for k in ("lost", "duplicated")) if isinstance(checks, dict) else None
        )
        label = f"{r['database']} ×{r['replicas']}"
        met = bot / bare >= 0.8 and bool(clean)
        yield Row(
            "P2 capture", label, "events/s", bot, bare, bot / bare, "ratio ≥ 0.8, 0 lost/dup", met, "ev/s"
        )


def _p3(report: dict[str, Any]) -> Iterator[Row]:
    for r in report["results"]:
        digest, floor = r["digest"], r["floor"]
        ratio = digest["seconds"] / floor["seconds"]
        yield Row(
            "P3 digest",
            r["database"],
            "time",
            digest["seconds"],
            floor["seconds"],
            ratio,
            "ratio ≤ 0.33",
            ratio <= 0.33,
            "s",
        )
        mb = digest["peak_rss_mb"]
        yield Row(
            "P3 digest",
            r["database"],
            "peak memory",
            mb,
            floor["peak_rss_mb"],
            None,
            "< 500 MB",
            mb < 500,
            "MB",
        )


def _p4(report: dict[str, Any]) -> Iterator[Row]:
    for r in report["results"]:
        seconds, floor = r["import"]["seconds"], r["floor"]["seconds"]
        ratio = seconds / floor
        yield Row("P4 import", r["database"], "time", seconds, floor, ratio, "ratio ≤ 1.5", ratio <= 1.5, "s")


def _p5(report: dict[str, Any]) -> Iterator[Row]:
    rate = report["in_process_messages_per_second"]
    yield Row(
        "P5 tagging", "in-process", "messages/s, one core", rate, None, None, "≥ 5,000", rate >= 5000, "msg/s"
    )
    for cli in report["cli"]:
        rate, database = cli["batch_messages_per_second"], cli["database"]
        yield Row(
            "P5 tagging", database, "`icp-bot tag` batch", rate, None, None, "≥ 5,000", rate >= 5000, "msg/s"
        )
        yield Row(
            "P5 tagging",
            database,
            "`icp-bot tag` loading accounts",
            cli["loading_seconds"],
            None,
            None,
            "(read accounts, build index)",
            None,
            "s",
        )


SMALL_FIT = ["--accounts", "2000", "--requests", "40", "--concurrent", "0"]
SMALL_DIGEST = ["--accounts", "2000", "--notes", "20000", "--repeat", "1"]
BENCHES = [
    Bench("P1", "bench/slack_fit.py", [], SMALL_FIT, True, "--out", _p1),
    Bench("P2", "bench/capture.py", [], ["--small"], True, "--json", _p2),
    Bench("P3", "bench/digest.py", [], SMALL_DIGEST, True, "--out", _p3),
    Bench("P4", "bench/import_outcomes.py", ["--no-reimport"], ["--small"], True, "--json", _p4),
    Bench("P5", "bench/tagging.py", [], ["--accounts", "2000", "--messages", "3000"], True, "--out", _p5),
]


def _machine() -> dict[str, Any]:
    return {
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def _format(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"
    return f"{text} {unit}".strip()


def table(rows: list[Row]) -> list[str]:
    lines = [
        "| figure | database | measure | icp-bot | floor | ratio | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        met = "—" if r.met is None else ("yes" if r.met else "**no**")
        ratio = "—" if r.ratio is None else f"{r.ratio:.2f}"
        lines.append(
            f"| {r.figure} | {r.database} | {r.measure} | {_format(r.value, r.unit)} | "
            f"{_format(r.floor, r.unit)} | {ratio} | {r.target} | {met} |"
        )
    return lines


TABLE_START = "<!-- bench/run.py writes from here -->"
TABLE_END = "<!-- bench/run.py writes up to here -->"


def write_section(page: Path, section: list[str]) -> None:
    """Put the latest table between the page's markers, keeping everything around them (the
    analysis written by hand); a page without the markers gets them, after its first line."""
    block = [TABLE_START, *section, TABLE_END]
    text = page.read_text(encoding="utf-8") if page.exists() else "# Benchmarks\n"
    if TABLE_START in text and TABLE_END in text:
        before, rest = text.split(TABLE_START, 1)
        after = rest.split(TABLE_END, 1)[1]
        page.write_text(before + "\n".join(block) + after, encoding="utf-8")
        return
    first, _, rest = text.partition("\n")
    page.write_text(
        "\n".join([first, "", *block, "", rest.lstrip("\n")]).rstrip("\n") + "\n", encoding="utf-8"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--postgres", help="also run every figure on this PostgreSQL database (scratch schemas)"
    )
    parser.add_argument("--small", action="store_true", help="thousands of rows instead of millions (CI)")
    parser.add_argument("--only", help="a comma-separated subset of P1,P2,P3,P4,P5")
    parser.add_argument("--out", default=str(RESULTS / "summary.json"))
    parser.add_argument("--markdown", help="also write the table as a Markdown page (e.g. BENCHMARKS.md)")
    args = parser.parse_args()
    chosen = {name.strip().upper() for name in args.only.split(",")} if args.only else None
    if chosen is not None and not chosen <= {b.name for b in BENCHES}:
        parser.error(f"--only takes names from {', '.join(b.name for b in BENCHES)}")
    out = Path(args.out)
    folder = out.parent / ("small" if args.small else "full")
    folder.mkdir(parents=True, exist_ok=True)
    machine = _machine()
    rows: list[Row] = []
    runs: dict[str, Any] = {}
    started = time.monotonic()
    for bench in BENCHES:
        if chosen is not None and bench.name not in chosen:
            continue
        result = folder / f"{bench.name.lower()}.json"
        command = [sys.executable, str(ROOT / bench.script), *(bench.small if args.small else bench.full)]
        if args.postgres and bench.postgres:
            command += ["--postgres", args.postgres]
        command += [bench.out_flag, str(result)]
        print(f"\n=== {bench.name}: {' '.join(command[1:])}", flush=True)
        began = time.monotonic()
        done = subprocess.run(command, cwd=ROOT, check=False)
        seconds = round(time.monotonic() - began, 1)
        runs[bench.name] = {"command": command[1:], "seconds": seconds, "exit": done.returncode}
        if done.returncode != 0 or not result.exists():
            print(
                f"bench/run.py: {bench.name} failed (exit {done.returncode}); see its output above",
                file=sys.stderr,
            )
            continue
        rows.extend(bench.rows(json.loads(result.read_text(encoding="utf-8"))))
    total = round(time.monotonic() - started, 1)
    lines = table(rows)
    print("\n" + "\n".join(lines))
    print(f"\n{len(rows)} figures in {total} s on {machine['machine']}, {machine['cpus']} cores")
    summary = {
        "machine": machine,
        "small": args.small,
        "seconds": total,
        "runs": runs,
        "rows": [asdict(r) for r in rows],
    }
    out.write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    if args.markdown:
        command = (
            "python bench/run.py"
            + (" --small" if args.small else "")
            + (" --postgres URL" if args.postgres else "")
        )
        parts = ", ".join(f"{name} {run['seconds'] / 60:.1f}" for name, run in runs.items())
        section = [
            f"Latest run ({time.strftime('%Y-%m-%d')}): `{command}` on {machine['machine']}, "
            f"{machine['cpus']} cores, Python {machine['python']}, load average at start "
            f"{machine['load_average']}; {total / 60:.1f} minutes in all (minutes per part: {parts}).",
            "",
            *lines,
        ]
        write_section(Path(args.markdown), section)
    failed = [name for name, run in runs.items() if run["exit"] != 0]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
