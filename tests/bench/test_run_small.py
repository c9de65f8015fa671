"""`bench/run.py --small` (the one-command benchmark at CI size) runs and reports every figure it
ran beside its floor. P2 and P4 have their own small-size tests; speed targets are never asserted
here (they live in the benchmark's table, not in tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.run import TABLE_END, TABLE_START, write_section

ROOT = Path(__file__).resolve().parents[2]


def test_the_small_benchmark_reports_each_figure_beside_its_floor(tmp_path: Path) -> None:
    out, page = tmp_path / "summary.json", tmp_path / "BENCHMARKS.md"
    command = [sys.executable, "bench/run.py", "--small", "--only", "P1,P3,P5"]
    done = subprocess.run(
        [*command, "--out", str(out), "--markdown", str(page)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads(out.read_text(encoding="utf-8"))
    assert {run["exit"] for run in summary["runs"].values()} == {0} and set(summary["runs"]) == {
        "P1",
        "P3",
        "P5",
    }
    rows = summary["rows"]
    figures = {(r["figure"], r["measure"]) for r in rows}
    assert figures >= {
        ("P1 fit answer", "p50 latency"),
        ("P1 fit answer", "p99 latency"),
        ("P3 digest", "time"),
        ("P3 digest", "peak memory"),
        ("P5 tagging", "messages/s, one core"),
        ("P5 tagging", "`icp-bot tag` batch"),
        ("P5 tagging", "`icp-bot tag` loading accounts"),
    }
    for row in rows:
        assert row["value"] > 0
        if row["ratio"] is not None:  # a ratio is the figure over its floor measured in the same run
            assert abs(row["ratio"] - row["value"] / row["floor"]) < 1e-9
    text = page.read_text(encoding="utf-8")
    assert text.startswith("# Benchmarks") and "| P1 fit answer | sqlite | p50 latency |" in text


def test_the_markdown_table_replaces_only_its_own_section_of_the_page(tmp_path: Path) -> None:
    page = tmp_path / "BENCHMARKS.md"
    page.write_text("# Benchmarks\n\nWhy P2 is slow.\n", encoding="utf-8")
    write_section(page, ["| old |"])
    first = page.read_text(encoding="utf-8")
    assert first.startswith("# Benchmarks\n\n" + TABLE_START + "\n| old |\n" + TABLE_END)
    assert first.endswith("Why P2 is slow.\n")
    write_section(page, ["| new |", "| row |"])
    second = page.read_text(encoding="utf-8")
    assert "| old |" not in second and second.count(TABLE_START) == 1
    assert second == first.replace("| old |", "| new |\n| row |")
