"""`bench/import_outcomes.py --small` (P4 at CI size) runs end to end and reports its figures.

Speed targets live in the benchmark's table, never in tests: only the report's shape and that the
import wrote one note per closed deal the generator produced are checked here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_small_import_benchmark_imports_every_closed_deal_and_reports_beside_its_floor(
    tmp_path: Path,
) -> None:
    out = tmp_path / "import_outcomes.json"
    done = subprocess.run(
        [sys.executable, "bench/import_outcomes.py", "--small", "--json", str(out), "--cache", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    generated = report["generated"]
    assert (generated["rows"], generated["accounts"]) == (20_000, 2_000)
    assert generated["closed"] == generated["won"] + generated["lost"] > 0
    assert generated["open"] > 0 and generated["not_an_outcome"] > 0 and generated["renewal_kept"] > 0
    assert generated["closed"] + generated["open"] + generated["not_an_outcome"] == generated["rows"]
    (result,) = report["results"]
    assert (result["database"], result["rows"], result["accounts"]) == ("sqlite", 20_000, 2_000)
    assert result["notes"] == result["expected_notes"] == generated["closed"]
    assert result["notes_by_status"] == {"active": generated["closed"]}
    for measured in (result["import"], result["floor"]):
        assert measured["seconds"] > 0 and measured["rows_per_second"] > 0 and measured["peak_rss_mb"] > 0
    assert result["floor"]["rows_written"] == 20_000
    assert result["reimport_unchanged_seconds"] > 0 and result["account_import_seconds"] > 0
    assert abs(result["ratio"] - result["import"]["seconds"] / result["floor"]["seconds"]) < 0.01
    assert f"{generated['closed']:,} new, 0 updated, 0 unchanged." in " ".join(result["import"]["summary"])
    assert set(result["targets"]) == {"ratio_at_most", "ratio_met"}
