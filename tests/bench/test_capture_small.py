"""`bench/capture.py --small` end to end (SQLite): the P2 capture benchmark runs, writes its JSON,
and the bot captured every outcome once, each confirmed once.

Speed targets live in the benchmark's report, not here: nothing below asserts a rate or a ratio.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_small_capture_benchmark_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    out = tmp_path / "capture.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "capture.py"), "--small", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    report = json.loads(out.read_text(encoding="utf-8"))

    assert {"command", "machine", "settings", "setup", "results", "total_seconds"} <= set(report)
    assert report["settings"]["accounts"] == 2_000
    assert report["settings"]["events"] == 300
    (result,) = report["results"]  # --small without --postgres: SQLite, one process
    assert (result["database"], result["replicas"]) == ("sqlite", 1)
    assert {"bot", "bare", "ratio", "target", "meets_target"} <= set(result)
    for side in ("bot", "bare"):
        figures = result[side]
        assert {"events", "deliveries", "statuses", "seconds", "events_per_s", "ack_ms"} <= set(figures)
        assert set(figures["ack_ms"]) == {"p50", "p99"}
        assert figures["events"] == 300
        assert figures["statuses"] == {"200": figures["deliveries"]}  # retries included, all acked
        assert figures["deliveries"] > figures["events"]  # some events were retried
    bot = result["bot"]
    assert "drain_after_last_ack_s" in bot

    checks = bot["checks"]
    assert checks["expected_notes"] > 0
    assert checks["lost"] == 0
    assert checks["duplicated"] == 0
    assert checks["unexpected"] == 0
    assert checks["notes"] == checks["expected_notes"]
    assert checks["unconfirmed"] == checks["confirmations_missing"] == checks["double_confirmed"] == 0
    assert checks["inbox"] == {"done": 300}
    assert checks["log_tracebacks"] == 0
