"""Benchmark of /icp-fit over HTTP: signed requests to `icp-bot run --http` with 100,000 accounts,
timed from the request to the answer reaching the Slack stand-in, beside a bare Bolt app.

    .venv/bin/python bench/slack_fit.py                      # SQLite, 100,000 accounts, 500 requests
    .venv/bin/python bench/slack_fit.py --postgres postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/slack_fit.py --accounts 5000 --requests 60 --concurrent 0   # a quick run

The accounts are bench/foundation.py's deterministic Salesforce export (cached in bench-results/),
imported with the real `icp-bot accounts import` into a fresh SQLite database (and, with
--postgres, into a scratch schema that is dropped afterwards). One local Slack stand-in (in this
process) serves the Web API and the response_urls; `icp-bot run --http` and bench/bare_bolt_app.py
(the same slack-bolt + waitress stack whose only listener acks `/icp-fit` and responds "ok") run as
subprocesses on free ports.

Both get the same query mix (exact names, loose spellings, domains, short forms, typos, unknown
names), interleaved one request at a time (bot, bare, bot, bare, ...) so they share the machine's
conditions. Each request has its own response_url; its answer latency is the time the stand-in
recorded that response_url call minus the time just before the request was sent, its ack latency
the time the HTTP response was read (Bolt polls for ack() every 10 ms, so acks take 10 ms or more
in both apps). A short concurrent run (4 clients, blocks alternating
between the two apps) follows unless --concurrent 0. Results are printed and written as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from importlib.metadata import version

from sqlalchemy import text

from bench.accounts_copy import cached_export, load_accounts
from bench.foundation import TEAM, percentile, queries
from bot.payloads import SlackSender, Workspace
from bot.server import serve_http
from bot.settings import bundled_resource
from bot.standin import RecordedCall, SlackStandIn
from storage.engine import make_engine, normalize_database_url

SECRET = "5f0c2a8e91b34d7aa1c6e0b9d2f47e13"  # the signing secret both apps check
PYTHON = sys.executable
BARE_APP = ROOT / "bench" / "bare_bolt_app.py"
RESULTS = ROOT / "bench-results"
ANSWER_TIMEOUT = 60.0  # seconds to wait for one answer before the run is declared failed
START_TIMEOUT = 300.0  # the bot builds its tagger over every account before it serves
WARMUP = 20


class BenchError(Exception):
    """A failure the benchmark reports in one line."""


# ---------------------------------------------------------------------------------------------
# The stand-in, told when each response_url answer arrives


class TimedStandIn(SlackStandIn):
    """SlackStandIn that indexes response_url calls by the `bench_req` query parameter the
    benchmark puts in each response_url, and wakes the waiting client when one arrives."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._arrived = threading.Condition()
        self._answers: dict[str, RecordedCall] = {}

    def _record(self, method: str, args: dict[str, Any], headers: dict[str, str], status: int) -> None:
        super()._record(method, args, headers, status)
        tag = args.get("bench_req")
        if method != "response_url" or not isinstance(tag, str):
            return
        with self._lock:
            call = next(c for c in reversed(self.state.calls) if c.args.get("bench_req") == tag)
        with self._arrived:
            self._answers[tag] = call
            self._arrived.notify_all()

    def tagged_response_url(self, tag: str) -> str:
        return f"{self.response_url()}?bench_req={tag}"

    def wait_answer(self, tag: str, timeout: float) -> RecordedCall | None:
        with self._arrived:
            self._arrived.wait_for(lambda: tag in self._answers, timeout)
            return self._answers.get(tag)


# ---------------------------------------------------------------------------------------------
# The two apps as subprocesses


def first_line(error: BaseException) -> str:
    """`Type: message` cut to its first line (database drivers' messages run to several)."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def last_line(path: Path) -> str:
    lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines() if path.exists() else []
    return lines[-1][:300] if lines else "(no output)"


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    sender: SlackSender

    @classmethod
    def start(cls, name: str, args: list[str], env: dict[str, str], cwd: Path, log: Path) -> Server:
        port = free_port()
        with log.open("wb") as out:
            process = subprocess.Popen(
                [*args, "--port", str(port)], env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT
            )
        sender = SlackSender(url=f"http://127.0.0.1:{port}/slack/events", secret=SECRET)
        return cls(name, process, port, log, sender)

    def wait_up(self, health_path: str | None, timeout: float = START_TIMEOUT) -> float:
        """Seconds until it serves: GET health_path answers 200, or (None) the port accepts."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise BenchError(
                    f"{self.name} exited with status {self.process.returncode} while starting: "
                    f"{last_line(self.log)} (log: {self.log})"
                )
            try:
                if health_path is None:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                        return time.monotonic() - started
                url = f"http://127.0.0.1:{self.port}{health_path}"
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return time.monotonic() - started
            except OSError:
                pass
            time.sleep(0.1)
        raise BenchError(f"{self.name} did not come up in {timeout:.0f} s (log: {self.log})")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# ---------------------------------------------------------------------------------------------
# Requests


@dataclass(frozen=True)
class Sample:
    app: str  # "bot" | "bare"
    kind: str  # the query kind from bench/foundation.py
    query: str
    ack_ms: float
    answer_ms: float
    answer: str  # what the answer was (see answer_kind)


def answer_kind(reply: str) -> str:
    """What kind of /icp-fit answer a response_url text is (templates/fit.mrkdwn.j2, not_found.mrkdwn.j2)."""
    if reply == "ok":
        return "ok"
    if "*Tier " in reply:
        how = re.search(r"_Matched “.*” by ([\w -]+)\._", reply)
        return f"matched by {how.group(1) if how else 'name'}"
    if " accounts. Which one do you mean?" in reply:
        return "ambiguous"
    if "Did you mean one of these?" in reply:
        return "suggestions"
    if "nor anything close to it" in reply:
        return "not found"
    return "other"


def send(slack: TimedStandIn, server: Server, workspace: Workspace, kind: str, query: str) -> Sample:
    tag = f"{server.name}-{uuid.uuid4().hex[:12]}"
    fields = workspace.slash_command(query, slack.tagged_response_url(tag))
    t0 = time.time()
    delivery = server.sender.command(fields)
    acked = time.time()
    if delivery.status != 200:
        raise BenchError(
            f"{server.name} answered HTTP {delivery.status} to /icp-fit {query!r}: {delivery.body[:200]} "
            f"(log: {server.log})"
        )
    call = slack.wait_answer(tag, ANSWER_TIMEOUT)
    if call is None:
        raise BenchError(
            f"{server.name} sent no answer to /icp-fit {query!r} within {ANSWER_TIMEOUT:.0f} s: "
            f"{last_line(server.log)} (log: {server.log})"
        )
    reply = str(call.args.get("text", ""))
    return Sample(server.name, kind, query, (acked - t0) * 1000, (call.at - t0) * 1000, answer_kind(reply))


def sequential(
    slack: TimedStandIn, servers: Sequence[Server], workspace: Workspace, mix: Sequence[tuple[str, str]]
) -> list[Sample]:
    """Every query to each server in turn, one request at a time."""
    return [send(slack, server, workspace, kind, q) for kind, q in mix for server in servers]


def concurrent(
    slack: TimedStandIn,
    servers: Sequence[Server],
    workspace: Workspace,
    mix: Sequence[tuple[str, str]],
    *,
    clients: int,
    block: int,
) -> list[Sample]:
    """`clients` requests in flight against one server at a time, in blocks alternating between servers."""
    samples: list[Sample] = []
    with ThreadPoolExecutor(clients) as pool:
        for start in range(0, len(mix), block):
            chunk = mix[start : start + block]
            for server in servers:
                samples.extend(pool.map(lambda kq, s=server: send(slack, s, workspace, *kq), chunk))
    return samples


# ---------------------------------------------------------------------------------------------
# Figures


def stats(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(values, 50), 1),
        "p90": round(percentile(values, 90), 1),
        "p99": round(percentile(values, 99), 1),
        "max": round(max(values), 1),
        "mean": round(statistics.fmean(values), 1),
    }


def summarize(samples: list[Sample], seconds: float) -> dict[str, Any]:
    bot = [s for s in samples if s.app == "bot"]
    bare = [s for s in samples if s.app == "bare"]
    figures: dict[str, Any] = {
        "requests_per_app": len(bot),
        "seconds": round(seconds, 1),
        "bot_answer_ms": stats([s.answer_ms for s in bot]),
        "bot_ack_ms": stats([s.ack_ms for s in bot]),
        "bare_answer_ms": stats([s.answer_ms for s in bare]),
        "bare_ack_ms": stats([s.ack_ms for s in bare]),
    }
    for p in ("p50", "p99"):
        figures[f"ratio_answer_{p}"] = round(figures["bot_answer_ms"][p] / figures["bare_answer_ms"][p], 1)
    kinds = sorted({s.kind for s in bot})
    figures["bot_answer_ms_by_query_kind"] = {
        k: stats([s.answer_ms for s in bot if s.kind == k]) for k in kinds
    }
    figures["bot_answers"] = dict(Counter(s.answer for s in bot).most_common())
    figures["bare_answers"] = dict(Counter(s.answer for s in bare).most_common())
    slowest = sorted(bot, key=lambda s: s.answer_ms, reverse=True)[:5]
    figures["bot_slowest"] = [
        {"query": s.query, "kind": s.kind, "answer": s.answer, "ms": round(s.answer_ms, 1)} for s in slowest
    ]
    return figures


def print_table(title: str, figures: dict[str, Any]) -> None:
    print(f"\n{title}")
    header = f"{'latency (ms)':<14}" + "".join(f"{c:>9}" for c in ("p50", "p90", "p99", "max"))
    print(header)
    print("-" * len(header))
    for key, label in (
        ("bot_answer_ms", "bot answer"),
        ("bot_ack_ms", "bot ack"),
        ("bare_answer_ms", "bare answer"),
        ("bare_ack_ms", "bare ack"),
    ):
        row = figures[key]
        print(f"{label:<14}" + "".join(f"{row[c]:>9.1f}" for c in ("p50", "p90", "p99", "max")))
    print(f"bot/bare answer: {figures['ratio_answer_p50']}x at p50, {figures['ratio_answer_p99']}x at p99")
    by_kind = ", ".join(
        f"{k} {v['p50']:.0f}/{v['p99']:.0f}" for k, v in figures["bot_answer_ms_by_query_kind"].items()
    )
    print(f"bot answer p50/p99 by query kind (ms): {by_kind}")
    print("bot answers: " + ", ".join(f"{k} {n}" for k, n in figures["bot_answers"].items()))


# ---------------------------------------------------------------------------------------------
# Set-up


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [PYTHON, "-m", "bot", *args], env=env, cwd=cwd, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise BenchError(f"icp-bot {' '.join(args[:2])} failed: {lines[-1] if lines else done.returncode}")
    return time.perf_counter() - started


@contextlib.contextmanager
def postgres_schema(admin_url: str) -> Iterator[str]:
    """A scratch schema in the given database, dropped afterwards; yields a URL that uses it."""
    schema = f"icpbot_slackbench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(admin_url)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        admin.dispose()
        raise BenchError(f"cannot create a scratch schema in {admin_url}: {first_line(exc)}") from None
    url = normalize_database_url(admin_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def base_env(slack: SlackStandIn) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "ICP_BOT_", "DATABASE_URL", "PORT"))
    }
    env |= {"SLACK_BOT_TOKEN": slack.token, "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": slack.base_url}
    return env


@dataclass
class Rig:
    """What every database's run shares: the accounts, the stand-in, the bare app, the folders."""

    args: argparse.Namespace
    export: Path
    rows: list[dict[str, str]]
    slack: TimedStandIn
    bare: Server
    workdir: Path
    logs: Path
    stack: contextlib.ExitStack


def bench_database(label: str, url: str, rig: Rig) -> dict[str, Any]:
    env = base_env(rig.slack) | {
        "DATABASE_URL": url,
        "ICP_BOT_TEAM_ID": TEAM,
        "ICP_BOT_CONFIG": str(bundled_resource("icp.example.yml")),
        "ICP_BOT_LOG_LEVEL": rig.args.log_level,
    }
    if not url.startswith("sqlite"):
        run_cli(["db", "upgrade"], env, rig.workdir)
    print(f"[{label}] importing {len(rig.rows):,} accounts ...", flush=True)
    imported, how = load_accounts(
        url, rig.export, TEAM, lambda: run_cli(["accounts", "import", str(rig.export)], env, rig.workdir)
    )
    print(f"[{label}] {how} in {imported:.1f} s; starting icp-bot run --http ...", flush=True)
    bot = Server.start(
        "bot",
        [PYTHON, "-m", "bot", "run", "--http", "--host", "127.0.0.1"],
        env,
        rig.workdir,
        rig.logs / f"bot-{label}.log",
    )
    rig.stack.callback(bot.stop)
    startup = bot.wait_up("/healthz")
    print(f"[{label}] bot up in {startup:.1f} s; warming up ({WARMUP} requests each) ...", flush=True)
    workspace = Workspace(team_id=rig.slack.team_id, bot_user_id=rig.slack.bot_user_id)
    servers = (bot, rig.bare)
    sequential(rig.slack, servers, workspace, queries(rig.rows, WARMUP, seed=3))

    mix = queries(rig.rows, rig.args.requests)
    print(f"[{label}] {len(mix)} sequential requests each, interleaved ...", flush=True)
    started = time.monotonic()
    seq = summarize(sequential(rig.slack, servers, workspace, mix), time.monotonic() - started)
    result: dict[str, Any] = {
        "database": label,
        "accounts": len(rig.rows),
        "import_seconds": round(imported, 1),
        "bot_startup_seconds": round(startup, 1),
        "sequential": seq,
    }
    clients = rig.args.clients
    if rig.args.concurrent:
        cmix = queries(rig.rows, rig.args.concurrent, seed=23)
        print(f"[{label}] {len(cmix)} requests each from {clients} concurrent clients ...", flush=True)
        started = time.monotonic()
        samples = concurrent(rig.slack, servers, workspace, cmix, clients=clients, block=clients * 5)
        result["concurrent"] = {"clients": clients} | summarize(samples, time.monotonic() - started)
    bot.stop()
    if bot.process.returncode not in (0, -signal.SIGTERM):
        raise BenchError(f"icp-bot run exited with status {bot.process.returncode} (log: {bot.log})")
    return result


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "slack_bolt": version("slack-bolt"),
        "waitress": version("waitress"),
    }


def run_stopping_cleanly(
    name: str,
    body: Callable[[argparse.Namespace, contextlib.ExitStack], dict[str, Any]],
    args: argparse.Namespace,
) -> tuple[dict[str, Any] | None, int]:
    """Run a benchmark whose apps and stand-in `body` registers on an ExitStack, so that they
    stop however it ends (SIGTERM included); (its report, 0), or (None, exit code) after one line
    on stderr."""

    def terminate(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    try:
        with contextlib.ExitStack() as stack:
            return body(args, stack), 0
    except KeyboardInterrupt:
        print(f"{name}: interrupted; the apps and the stand-in were stopped", file=sys.stderr)
        return None, 130
    except BenchError as error:
        print(f"{name}: {error}", file=sys.stderr)
        return None, 1
    except Exception as error:  # anything unforeseen still ends in one line (and a clean stop)
        print(f"{name}: unexpected {first_line(error)}", file=sys.stderr)
        return None, 1


def run(args: argparse.Namespace, stack: contextlib.ExitStack) -> dict[str, Any]:
    started = time.monotonic()
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    # the scratch schema first: a PostgreSQL that cannot be reached fails the run before it starts
    pg_url = stack.enter_context(postgres_schema(args.postgres)) if args.postgres else None
    export, rows = cached_export(args.accounts)
    print(f"Accounts: {len(rows):,} in {export}", flush=True)
    workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="icp-slackbench-")))
    logs = RESULTS / "slack_fit-logs"
    logs.mkdir(parents=True, exist_ok=True)

    slack = TimedStandIn(team_id=TEAM)
    slack.start()
    stack.callback(slack.stop)
    threads = inspect.signature(serve_http).parameters["threads"].default
    bare = Server.start(
        "bare",
        [PYTHON, str(BARE_APP), "--host", "127.0.0.1", "--threads", str(threads)],
        base_env(slack),
        workdir,
        logs / "bare.log",
    )
    stack.callback(bare.stop)
    bare.wait_up(None, timeout=60)

    rig = Rig(args, export, rows, slack, bare, workdir, logs, stack)
    results = [bench_database("sqlite", f"sqlite:///{workdir / 'bench.db'}", rig)]
    if pg_url is not None:
        results.append(bench_database("postgresql", pg_url, rig))
    return {
        "command": " ".join([Path(PYTHON).name, *sys.argv]),
        "machine": machine() | {"load_average_at_start": load_at_start},
        "settings": {
            "accounts": args.accounts,
            "requests": args.requests,
            "warmup": WARMUP,
            "concurrent_requests": args.concurrent,
            "clients": args.clients,
            "waitress_threads": threads,
            "bot_log_level": args.log_level,
            "latency": "answer: stand-in's record time of the response_url call minus time just before "
            "sending; ack: HTTP response read minus the same start",
        },
        "results": results,
        "total_seconds": round(time.monotonic() - started, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=500, help="sequential requests to each app")
    parser.add_argument(
        "--concurrent", type=int, default=200, help="requests to each app in the concurrent run (0: skip it)"
    )
    parser.add_argument("--clients", type=int, default=4, help="clients in the concurrent run")
    parser.add_argument("--postgres", help="also run on this PostgreSQL database (in a scratch schema)")
    parser.add_argument("--log-level", default="INFO", help="the bot's ICP_BOT_LOG_LEVEL (default INFO)")
    parser.add_argument("--out", default=str(RESULTS / "slack_fit.json"))
    args = parser.parse_args()
    if args.accounts < 10 or args.requests < 1 or args.clients < 1 or args.concurrent < 0:
        parser.error("--accounts must be at least 10, --requests and --clients at least 1")

    report, code = run_stopping_cleanly("slack_fit", run, args)
    if report is None:
        return code
    m = report["machine"]
    load = m["load_average_at_start"]
    print(f"\nMachine: {m['machine']}, {m['cpus']} cores, Python {m['python']}, load average at start {load}")
    for r in report["results"]:
        seq = r["sequential"]
        title = (
            f"{r['database']}: {r['accounts']:,} accounts, {seq['requests_per_app']} sequential requests "
            f"per app (import {r['import_seconds']} s, bot start {r['bot_startup_seconds']} s)"
        )
        print_table(title, seq)
        if "concurrent" in r:
            c = r["concurrent"]
            title = (
                f"{r['database']}: {c['clients']} concurrent clients, {c['requests_per_app']} requests each"
            )
            print_table(title, c)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"\nWhole benchmark: {report['total_seconds']} s. Wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
