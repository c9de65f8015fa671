"""P2 capture benchmark: sustained signed `message` events per second through `icp-bot run --http`,
each tagged, stored and confirmed, against the bare Bolt app acknowledging the same events.

    .venv/bin/python bench/capture.py                     # SQLite, 100,000 accounts, 1,500 events
    .venv/bin/python bench/capture.py --postgres postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/capture.py --small             # 2,000 accounts, 300 events (CI)

The accounts are bench/foundation.py's deterministic Salesforce export (cached in bench-results/),
imported with the real `icp-bot accounts import` into a fresh SQLite database and, with --postgres,
into a scratch schema migrated with `icp-bot db upgrade` and dropped afterwards. A Slack stand-in
(in this process) serves the Web API; `icp-bot run --http` and bench/bare_bolt_app.py (slack-bolt +
waitress, whose `message` listener does nothing) run as subprocesses on free ports.

Traffic: a channel mix naming the generated accounts (about a third outcomes, the rest chatter) in
#deals and #churn (captured, confirmed in thread) and #general (not captured), every event with its
own ts and event_id, signed with the secret; about 5% of the events are delivered a second time a
little later as Slack's retries (X-Slack-Retry-Num: 1). `--senders` threads send them as fast as
the app answers, each over its own keep-alive connections. With two replicas (PostgreSQL only), two
`icp-bot run --http` processes share the database and delivery i goes to replica i % 2, a retry to
the other one; the floor is then two bare apps, split the same way.

Rates are events (unique; retries ride along) per second:
  bot:  from the first send until every expected note exists, every note's confirmation has reached
        the stand-in and `inbox_events` holds nothing pending (the last of: the last confirmation's
        arrival, the last event's processed_at), so the work done after the 200 is counted;
  bare: from the first send to the last 200 (the median of three passes, each a second or two).
The expected notes are what `icp-bot tag FILE` calls outcomes for the same texts and accounts
(run once, on the first database). Afterwards the notes are checked: none lost, none duplicated,
none unexpected, each confirmed once, every event done. Each run is preceded by a short warm-up
(not measured). The CPU time the apps' processes used per event is reported beside the rates.
Results are printed and written as JSON (bot logs and profiles in bench-results/capture-logs/).

    --profile [gil|running|wall]   py-spy samples the bot during each measured run (pip install
                                   py-spy): where its CPU goes (gil), and with `wall` how busy each
                                   event lane (one per channel) was.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import inspect
import itertools
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, func, select

from bench.accounts_copy import cached_export, load_accounts
from bench.foundation import TEAM, percentile
from bench.slack_fit import (
    BARE_APP,
    PYTHON,
    RESULTS,
    SECRET,
    BenchError,
    Server,
    base_env,
    first_line,
    last_line,
    machine,
    postgres_schema,
    run_cli,
    run_stopping_cleanly,
)
from bot.payloads import Workspace, sign
from bot.server import serve_http
from bot.settings import bundled_resource
from bot.standin import SlackStandIn
from storage.engine import make_engine
from storage.models import InboxEvent, Note

TARGET = 0.8  # the bot's rate as a share of the bare app's (the P2 target)
CAPTURED = ("C0DEALS", "C0CHURN")  # the capture channels of the benchmark's config
CHANNELS = {"C0DEALS": "deals", "C0CHURN": "churn", "C0GENERAL": "general", "C0DIGEST": "icp-digest"}
RETRY_SHARE = 0.05  # events delivered a second time, as Slack's retries
RETRY_LAG = 40  # deliveries between an event and its retry
WARMUP = 40  # events sent to each app before each measured run
BARE_PASSES = 3  # the bare app takes a second or two: its median pass of three is reported
DRAIN_TIMEOUT = 300.0  # seconds after the last ack for the bot to capture and confirm everything
SETTLE = 1.0  # seconds to wait after the bot is done before counting (a late second confirmation)
LOGS = RESULTS / "capture-logs"

# Outcome and chatter templates, by channel. {account}: a generated account; {competitor}: one of
# the example config's competitors (what the tagger knows).
OUTCOMES = {
    "C0DEALS": [
        "Closed won {account}! 3-year deal, beat {competitor} on ease of use",
        "Lost {account} to {competitor} on price",
        "CL {account} - no decision, budget frozen",
        "{account} signed today, $120k ARR, went with us over {competitor}",
        "closed lost: {account} picked {competitor}, we were too expensive",
        "We won {account}. The security review was the deciding factor",
    ],
    "C0CHURN": [
        "#churn {account} gave notice, champion left",
        "{account} churned, moving to {competitor} at renewal",
        "{account} rollout failed the security sign-off",
        "{account} cancelled their contract, not enough usage",
    ],
}
CHATTER = [
    "meeting {account} next Tuesday",
    "who owns {account}?",
    "lunch anyone?",
    "can someone send me the {account} deck",
    "{account} asked for a demo of the API next week",
    "anyone know a contact at {account}?",
    "QBR prep for {account} is in the usual doc",
    "great call with {account} today, they liked the roadmap",
    "reminder: pipeline review at 3pm",
    "is {account} on the new pricing yet?",
]
COMPETITORS = ["Gong", "Clari", "Gainsight", "Salesloft", "Outreach", "Totango", "ChurnZero"]


# ---------------------------------------------------------------------------------------------
# The stand-in, counting the confirmations it receives


class CaptureStandIn(SlackStandIn):
    """SlackStandIn that counts the thread replies (the bot's confirmations) to watched messages
    and when the last one arrived."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._seen = threading.Condition()
        self._watched: frozenset[tuple[str, str]] = frozenset()
        self.confirmations: Counter[tuple[str, str]] = Counter()
        self.last_confirmation_at = 0.0

    def watch(self, keys: set[tuple[str, str]]) -> None:
        with self._seen:
            self._watched = frozenset(keys)
            self.confirmations = Counter()
            self.last_confirmation_at = 0.0

    def _api_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        result = super()._api_chat_postMessage(args)
        key = (str(args.get("channel", "")), str(args.get("thread_ts", "")))
        if result.get("ok") and key in self._watched:
            with self._seen:
                self.confirmations[key] += 1
                self.last_confirmation_at = time.time()
                self._seen.notify_all()
        return result

    def wait_confirmed(self, count: int, timeout: float) -> bool:
        """Wait until `count` watched messages have a confirmation."""
        with self._seen:
            return self._seen.wait_for(lambda: len(self.confirmations) >= count, timeout)


# ---------------------------------------------------------------------------------------------
# Traffic


@dataclass(frozen=True)
class Message:
    channel: str
    text: str
    user: str


def channel_mix(rows: list[dict[str, str]], count: int, seed: int = 17) -> list[Message]:
    """`count` channel messages naming generated accounts: #deals 55%, #churn 30%, #general 15%;
    in the capture channels about two in five are outcomes (a third overall)."""
    rng = random.Random(seed)
    out: list[Message] = []
    for _ in range(count):
        channel = rng.choices(("C0DEALS", "C0CHURN", "C0GENERAL"), weights=(55, 30, 15))[0]
        outcome = channel in OUTCOMES and rng.random() < 0.4
        template = rng.choice(OUTCOMES[channel] if outcome else CHATTER)
        text = template.format(account=rng.choice(rows)["Name"], competitor=rng.choice(COMPETITORS))
        out.append(Message(channel, text, f"U0REP{rng.randrange(40):02d}"))
    return out


def stamp(run_no: int, i: int, base: int) -> str:
    """A message ts unique per run and event (runs share a database), within the last days."""
    return f"{base + run_no * 3_600 + i // 100}.{(i % 100) * 10_000 + 1:06d}"


@dataclass(frozen=True)
class Event:
    index: int
    channel: str
    ts: str
    body: bytes


def build_events(workspace: Workspace, mix: Sequence[Message], run_no: int, base: int) -> list[Event]:
    events = []
    for i, m in enumerate(mix):
        ts = stamp(run_no, i, base)
        body = workspace.event_callback(
            workspace.message(m.channel, m.text, ts, user=m.user), event_id=f"EvCAP{run_no:02d}x{i:07d}"
        )
        events.append(Event(i, m.channel, ts, json.dumps(body).encode()))
    return events


@dataclass(frozen=True)
class Delivery:
    event: int  # index into the events
    retry: int  # 0: the first delivery; 1: Slack's retry
    target: int  # which server (replica)


def delivery_plan(count: int, replicas: int, seed: int = 29) -> list[Delivery]:
    """Every event once, in order, to replica i % replicas; RETRY_SHARE of them again RETRY_LAG
    deliveries later, to the other replica."""
    rng = random.Random(seed)
    plan: list[Delivery] = []
    waiting: list[tuple[int, Delivery]] = []  # (due position, retry)
    for i in range(count):
        plan.append(Delivery(i, 0, i % replicas))
        if rng.random() < RETRY_SHARE:
            waiting.append((len(plan) + RETRY_LAG, Delivery(i, 1, (i + 1) % replicas)))
        while waiting and waiting[0][0] <= len(plan):
            plan.append(waiting.pop(0)[1])
    plan.extend(d for _, d in waiting)
    return plan


@dataclass
class Sent:
    """What the senders saw, per delivery."""

    started: list[float]
    finished: list[float]
    status: list[int]


def _post(
    connections: dict[int, http.client.HTTPConnection],
    ports: Sequence[int],
    target: int,
    body: bytes,
    headers: dict[str, str],
) -> int:
    """POST over this thread's keep-alive connection to `target` (reopened once if it was closed)."""
    for attempt in (0, 1):
        connection = connections.get(target)
        if connection is None:
            connection = connections[target] = http.client.HTTPConnection(
                "127.0.0.1", ports[target], timeout=30
            )
        try:
            connection.request("POST", "/slack/events", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.will_close:
                connection.close()
                del connections[target]
            return int(response.status)
        except (http.client.HTTPException, ConnectionError):
            connection.close()
            del connections[target]
            if attempt:
                raise
    raise AssertionError("unreachable")


def deliver(ports: Sequence[int], events: Sequence[Event], plan: Sequence[Delivery], senders: int) -> Sent:
    """Send every delivery of the plan from `senders` threads, as fast as the servers answer."""
    now = int(time.time())
    requests = []
    for d in plan:  # signed up front, so the senders spend their time sending
        body = events[d.event].body
        headers = {"Content-Type": "application/json", **sign(body, SECRET, now)}
        if d.retry:
            headers |= {"X-Slack-Retry-Num": str(d.retry), "X-Slack-Retry-Reason": "http_timeout"}
        requests.append((d.target, body, headers))
    sent = Sent([0.0] * len(plan), [0.0] * len(plan), [0] * len(plan))
    order = itertools.count()  # next() is atomic under the GIL: one shared queue
    failures: list[BaseException] = []
    ready = threading.Barrier(senders)

    def sender() -> None:
        connections: dict[int, http.client.HTTPConnection] = {}
        ready.wait()
        try:
            while (i := next(order)) < len(requests):
                target, body, headers = requests[i]
                sent.started[i] = time.time()
                sent.status[i] = _post(connections, ports, target, body, headers)
                sent.finished[i] = time.time()
        except Exception as exc:
            failures.append(exc)
        finally:
            for connection in connections.values():
                connection.close()

    threads = [threading.Thread(target=sender, name=f"sender-{k}") for k in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise BenchError(f"a sender failed: {first_line(failures[0])}")
    return sent


def cpu_seconds(servers: Sequence[Server]) -> float:
    """User + system CPU time the servers' processes have used so far (Linux /proc; 0 elsewhere)."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0
    for server in servers:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{server.process.pid}/stat").read_text().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / ticks


def log_tracebacks(servers: Sequence[Server]) -> int:
    return sum(
        s.log.read_text(encoding="utf-8", errors="replace").count("Traceback")
        for s in servers
        if s.log.exists()
    )


def ack_stats(sent: Sent) -> dict[str, float]:
    values = [(f - s) * 1000 for s, f in zip(sent.started, sent.finished, strict=True)]
    return {"p50": round(percentile(values, 50), 1), "p99": round(percentile(values, 99), 1)}


# ---------------------------------------------------------------------------------------------
# The bot's side: what it stored and confirmed


def _epoch(value: datetime | None) -> float:
    if value is None:
        return 0.0
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


@dataclass
class Database:
    label: str
    url: str
    engine: Engine
    env: dict[str, str]
    bots: list[Server] = field(default_factory=list)

    def pending(self) -> int:
        with self.engine.connect() as connection:
            query = select(func.count()).select_from(InboxEvent).where(InboxEvent.state == "pending")
            return int(connection.execute(query).scalar_one())

    def notes(self, keys: set[tuple[str, str]]) -> list[tuple[str, str, str | None]]:
        """(channel, ts, confirmation_ts) of the notes on these messages."""
        with self.engine.connect() as connection:
            query = select(Note.channel, Note.ts, Note.confirmation_ts).where(Note.team_id == TEAM)
            rows = connection.execute(query).all()
        return [(str(c), str(ts), ct) for c, ts, ct in rows if (c, ts) in keys]

    def inbox(self, run_no: int) -> tuple[Counter[str], float]:
        """This run's events by state, and when the last one was processed."""
        prefix = f"EvCAP{run_no:02d}x%"
        mine = InboxEvent.event_id.like(prefix)
        with self.engine.connect() as connection:
            states = Counter(
                {
                    str(state): int(n)
                    for state, n in connection.execute(
                        select(InboxEvent.state, func.count()).where(mine).group_by(InboxEvent.state)
                    )
                }
            )
            last = connection.execute(select(func.max(InboxEvent.processed_at)).where(mine)).scalar()
        return states, _epoch(last)


def wait_drained(
    slack: CaptureStandIn, db: Database, run_no: int, events: int, expected: set[tuple[str, str]]
) -> float:
    """Wait until every expected note is confirmed and nothing is pending; return when that was."""
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while True:
        if slack.wait_confirmed(len(expected), 0.2):
            states, last_processed = db.inbox(run_no)
            if db.pending() == 0 and states.total() >= events:
                return max(slack.last_confirmation_at, last_processed)
        if time.monotonic() > deadline:
            states, _ = db.inbox(run_no)
            confirmed = len(slack.confirmations)
            logs = ", ".join(str(b.log) for b in db.bots)
            raise BenchError(
                f"[{db.label}] not drained {DRAIN_TIMEOUT:.0f} s after the last ack: "
                f"{confirmed}/{len(expected)} confirmed, inbox {dict(states)} (logs: {logs})"
            )
        for bot in db.bots:
            if bot.process.poll() is not None:
                raise BenchError(f"{bot.name} exited with {bot.process.returncode}: {last_line(bot.log)}")


# ---------------------------------------------------------------------------------------------
# Profiles (--profile): py-spy samples the bot's processes during a measured run


@contextlib.contextmanager
def profiling(bots: Sequence[Server], name: str, mode: str | None) -> Iterator[list[Path]]:
    """py-spy records every bot process until the block ends: `gil`, the thread holding the GIL
    (where the CPU goes); `running`, every thread not idle; `wall`, every thread."""
    if mode is None:
        yield []
        return
    spy = Path(PYTHON).with_name("py-spy")
    if not spy.exists():
        raise BenchError(f"--profile needs py-spy: {Path(PYTHON).with_name('pip')} install py-spy")
    outs, spies = [], []
    for bot in bots:
        out = LOGS / f"profile-{mode}-{name}-{bot.name}.txt"
        command = [str(spy), "record", "--pid", str(bot.process.pid), "--rate", "200", "--threads"]
        command += ["--nonblocking", "--format", "raw", "--output", str(out)]
        command += {"gil": ["--gil"], "wall": ["--idle"]}.get(mode, [])
        spies.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        outs.append(out)
    time.sleep(1.0)  # py-spy attaches
    try:
        yield outs
    finally:
        for process in spies:
            process.send_signal(signal.SIGINT)
        for process in spies:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


_LINE = re.compile(r":\d+\)$")
_THREAD = re.compile(r"[-_ ]?\d+$")


def summarize_profile(paths: Sequence[Path], top: int = 20) -> dict[str, Any]:
    """Shares of the samples: by thread (numbered pool threads together), by function as the
    innermost frame (self), by project function anywhere on the stack (inclusive), and for each
    event lane thread the share of its samples spent on an event (telling in `wall` mode)."""
    threads: Counter[str] = Counter()
    lanes: dict[str, Counter[bool]] = {}
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            _, _, frames_text = stack.partition(": ")
            thread, *frames = frames_text.split(";")
            total += n
            threads[_THREAD.sub("", thread) or thread] += n
            if thread.startswith("event-lane"):
                lane = lanes.setdefault(f"{path.stem.rsplit('-', 1)[-1]}:{thread}", Counter())
                lane["EventInbox._run_lane (bot/inbox.py" in frames_text] += n
            frames = [_LINE.sub(")", f) for f in frames]
            if frames:
                own[frames[-1]] += n
            for frame in set(frames):
                if any(f"({part}/" in frame for part in ("bot", "insights", "storage")):
                    inclusive[frame] += n

    def shares(counter: Counter[str]) -> list[list[Any]]:
        return [[name, round(100 * n / total, 1)] for name, n in counter.most_common(top)]

    return {
        "samples": total,
        "files": [str(p) for p in paths],
        "by_thread_pct": {k: v for k, v in shares(threads) if v > 0} if total else {},
        "self_pct": shares(own) if total else [],
        "project_inclusive_pct": shares(inclusive) if total else [],
        "lane_busy_pct": {k: round(100 * c[True] / c.total()) for k, c in sorted(lanes.items())},
    }


# ---------------------------------------------------------------------------------------------
# One run: the bare floor, then the bot, on the same events


@dataclass
class Rig:
    args: argparse.Namespace
    export: Path
    rows: list[dict[str, str]]
    mix: list[Message]
    slack: CaptureStandIn
    bare: list[Server]
    workdir: Path
    config: Path
    stack: contextlib.ExitStack
    base: int = field(default_factory=lambda: int(time.time()) - 3 * 86_400)  # of the message ts
    runs: itertools.count[int] = field(default_factory=lambda: itertools.count(1))  # run numbers

    @property
    def workspace(self) -> Workspace:
        return Workspace(team_id=self.slack.team_id, bot_user_id=self.slack.bot_user_id)


def bot_run(
    rig: Rig,
    db: Database,
    mix: Sequence[Message],
    expected_idx: set[int],
    replicas: int,
    *,
    profile: str | None = None,
) -> dict[str, Any]:
    """Send the mix to the bot's replicas and wait until all is captured; figures and checks."""
    run_no = next(rig.runs)
    events = build_events(rig.workspace, mix, run_no, rig.base)
    plan = delivery_plan(len(events), replicas)
    keys = {(e.channel, e.ts) for e in events}
    expected = {(events[i].channel, events[i].ts) for i in expected_idx}
    rig.slack.watch(expected)
    ports = [b.port for b in db.bots[:replicas]]
    name = f"{db.label}-x{replicas}"
    tracebacks = log_tracebacks(db.bots[:replicas])
    with profiling(db.bots[:replicas], name, profile) as profiles:
        cpu, own = cpu_seconds(db.bots[:replicas]), time.process_time()
        sent = deliver(ports, events, plan, rig.args.senders)
        done = wait_drained(rig.slack, db, run_no, len(events), expected)
        cpu, own = cpu_seconds(db.bots[:replicas]) - cpu, time.process_time() - own
    time.sleep(SETTLE)
    first, last_ack = min(sent.started), max(sent.finished)
    notes = db.notes(keys)
    by_key = Counter((c, ts) for c, ts, _ in notes)
    states, _ = db.inbox(run_no)
    confirmations = rig.slack.confirmations
    seconds = done - first
    result: dict[str, Any] = {
        "events": len(events),
        "deliveries": len(plan),
        "statuses": {str(k): n for k, n in sorted(Counter(sent.status).items())},
        "seconds": round(seconds, 3),
        "events_per_s": round(len(events) / seconds, 1),
        "ack_ms": ack_stats(sent),
        "ack_seconds": round(last_ack - first, 3),
        "acks_per_s": round(len(events) / (last_ack - first), 1),
        "drain_after_last_ack_s": round(max(0.0, done - last_ack), 3),
        "cpu_ms_per_event": round(1000 * cpu / len(events), 2),  # the bot processes' own CPU
        "cpu_cores_busy": round(cpu / seconds, 2),
        "benchmark_process_cores_busy": round(own / seconds, 2),
        "checks": {
            "expected_notes": len(expected),
            "notes": len(notes),
            "lost": len(expected - set(by_key)),
            "duplicated": sum(1 for n in by_key.values() if n > 1),
            "unexpected": len(set(by_key) - expected),
            "unconfirmed": sum(1 for _, _, ct in notes if not ct),
            "confirmations_missing": len(expected - set(confirmations)),
            "double_confirmed": sum(1 for n in confirmations.values() if n > 1),
            "inbox": dict(sorted(states.items())),
            "log_tracebacks": log_tracebacks(db.bots[:replicas]) - tracebacks,
        },
    }
    if profiles:
        result["profile"] = {"mode": profile} | summarize_profile(profiles)
    return result


def bare_run(rig: Rig, mix: Sequence[Message], replicas: int) -> dict[str, Any]:
    run_no = next(rig.runs)
    events = build_events(rig.workspace, mix, run_no, rig.base)
    plan = delivery_plan(len(events), replicas)
    cpu, own = cpu_seconds(rig.bare[:replicas]), time.process_time()
    sent = deliver([b.port for b in rig.bare[:replicas]], events, plan, rig.args.senders)
    seconds = max(sent.finished) - min(sent.started)
    cpu, own = cpu_seconds(rig.bare[:replicas]) - cpu, time.process_time() - own
    return {
        "events": len(events),
        "deliveries": len(plan),
        "statuses": {str(k): n for k, n in sorted(Counter(sent.status).items())},
        "seconds": round(seconds, 3),
        "events_per_s": round(len(events) / seconds, 1),
        "ack_ms": ack_stats(sent),
        "cpu_ms_per_event": round(1000 * cpu / len(events), 2),
        "cpu_cores_busy": round(cpu / seconds, 2),
        "benchmark_process_cores_busy": round(own / seconds, 2),  # the senders (and the stand-in)
    }


def measure(rig: Rig, db: Database, expected_idx: set[int], replicas: int) -> dict[str, Any]:
    warm = rig.mix[:WARMUP]
    bare_run(rig, warm, replicas)
    bot_run(rig, db, warm, {i for i in expected_idx if i < WARMUP}, replicas)
    print(f"[{db.label} x{replicas}] {len(rig.mix):,} events to the bare app ...", flush=True)
    passes = [bare_run(rig, rig.mix, replicas) for _ in range(BARE_PASSES)]
    bare = sorted(passes, key=lambda p: p["events_per_s"])[len(passes) // 2]  # the median pass
    bare["passes_events_per_s"] = [p["events_per_s"] for p in passes]
    print(f"[{db.label} x{replicas}] {len(rig.mix):,} events to the bot ...", flush=True)
    bot = bot_run(rig, db, rig.mix, expected_idx, replicas, profile=rig.args.profile)
    ratio = bot["events_per_s"] / bare["events_per_s"]
    result = {
        "database": db.label,
        "replicas": replicas,
        "bot": bot,
        "bare": bare,
        "ratio": round(ratio, 3),
        "target": TARGET,
        "meets_target": ratio >= TARGET,
    }
    print_row(result, header=False)
    return result


# ---------------------------------------------------------------------------------------------
# Set-up per database


def write_config(folder: Path) -> Path:
    """The bundled example config, capturing #deals and #churn by ID, confirming in thread."""
    text = bundled_resource("icp.example.yml").read_text(encoding="utf-8")
    old = '  channels: [C0DEALS, "#churn"]\n'
    if old not in text:
        raise BenchError("the example config changed; update bench/capture.py write_config")
    path = folder / "capture.yml"
    path.write_text(text.replace(old, f"  channels: [{', '.join(CAPTURED)}]\n"), encoding="utf-8")
    return path


def expected_outcomes(rig: Rig, env: dict[str, str], label: str) -> set[int]:
    """Indexes of the mix's capture-channel messages that `icp-bot tag` calls outcomes."""
    path = rig.workdir / f"texts-{label}.jsonl"
    path.write_text("".join(json.dumps({"text": m.text}) + "\n" for m in rig.mix), encoding="utf-8")
    done = subprocess.run(
        [PYTHON, "-m", "bot", "tag", str(path), "--json"],
        env=env,
        cwd=rig.workdir,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"icp-bot tag failed: {(done.stderr or done.stdout).strip()[-300:]}")
    tags = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    if len(tags) != len(rig.mix):
        raise BenchError(f"icp-bot tag answered {len(tags)} lines for {len(rig.mix)} messages")
    return {i for i, t in enumerate(tags) if t["kind"] and rig.mix[i].channel in CAPTURED}


def start_bot(rig: Rig, db: Database, name: str) -> Server:
    bot = Server.start(
        name,
        [PYTHON, "-m", "bot", "run", "--http", "--host", "127.0.0.1"],
        db.env,
        rig.workdir,
        LOGS / f"{name}.log",
    )
    rig.stack.callback(bot.stop)
    db.bots.append(bot)
    return bot


def bench_database(
    label: str, url: str, rig: Rig, replicas: list[int], expected: set[int] | None
) -> tuple[dict[str, Any], list[dict[str, Any]], set[int]]:
    """Import the accounts, start one bot, measure each replica count (starting another replica
    when needed); `expected`: the outcomes, when already known from another database."""
    env = base_env(rig.slack) | {
        "DATABASE_URL": url,
        "ICP_BOT_TEAM_ID": TEAM,
        "ICP_BOT_CONFIG": str(rig.config),
        "ICP_BOT_LOG_LEVEL": rig.args.log_level,
    }
    if not url.startswith("sqlite"):
        run_cli(["db", "upgrade"], env, rig.workdir)
    print(f"[{label}] importing {len(rig.rows):,} accounts ...", flush=True)
    imported, how = load_accounts(
        url, rig.export, TEAM, lambda: run_cli(["accounts", "import", str(rig.export)], env, rig.workdir)
    )
    engine = make_engine(url)
    rig.stack.callback(engine.dispose)
    db = Database(label, url, engine, env)
    print(f"[{label}] {how} in {imported:.1f} s; starting icp-bot run --http ...", flush=True)
    first = start_bot(rig, db, f"bot-{label}-1")
    with ThreadPoolExecutor(1) as pool:  # `icp-bot tag` runs while the bot builds its tagger
        tagging = pool.submit(expected_outcomes, rig, env, label) if expected is None else None
        startup = first.wait_up("/healthz")
        expected = tagging.result() if tagging is not None else expected
    print(
        f"[{label}] bot up in {startup:.1f} s; {len(expected)} of {len(rig.mix)} messages are "
        "outcomes in capture channels",
        flush=True,
    )
    setup: dict[str, Any] = {
        "database": label,
        "accounts": len(rig.rows),
        "import_seconds": round(imported, 1),
        "bot_startup_seconds": [round(startup, 1)],
        "expected_notes": len(expected),
    }
    results = []
    for count in replicas:
        # Replicas start one after another: two starting together on a fresh database race to
        # create APScheduler's table (see the report), and one of them exits.
        while len(db.bots) < count:
            print(f"[{label}] starting replica {len(db.bots) + 1} ...", flush=True)
            extra = start_bot(rig, db, f"bot-{label}-{len(db.bots) + 1}")
            setup["bot_startup_seconds"].append(round(extra.wait_up("/healthz"), 1))
        results.append(measure(rig, db, expected, count))
    for bot in db.bots:
        stop_bot(bot)
    return setup, results, expected


def stop_bot(bot: Server) -> None:
    bot.stop()
    if bot.process.returncode not in (0, -signal.SIGTERM):
        raise BenchError(f"{bot.name} exited with status {bot.process.returncode} (log: {bot.log})")


# ---------------------------------------------------------------------------------------------
# Report


COLUMNS = (
    f"{'database':<11}{'repl':>5}{'events':>8}{'bot ev/s':>10}{'bare ev/s':>10}{'ratio':>7}"
    f"{'bot ack p50/p99':>17}{'bare ack p50/p99':>18}{'drain s':>9}{'lost':>6}{'dup':>5}{'2x conf':>8}"
)


def print_row(r: dict[str, Any], *, header: bool = True) -> None:
    if header:
        print(COLUMNS)
        print("-" * len(COLUMNS))
    bot, bare, checks = r["bot"], r["bare"], r["bot"]["checks"]
    ack = f"{bot['ack_ms']['p50']:.0f}/{bot['ack_ms']['p99']:.0f} ms"
    bare_ack = f"{bare['ack_ms']['p50']:.0f}/{bare['ack_ms']['p99']:.0f} ms"
    print(
        f"{r['database']:<11}{r['replicas']:>5}{bot['events']:>8}{bot['events_per_s']:>10.1f}"
        f"{bare['events_per_s']:>10.1f}{r['ratio']:>7.2f}{ack:>17}{bare_ack:>18}"
        f"{bot['drain_after_last_ack_s']:>9.1f}{checks['lost']:>6}{checks['duplicated']:>5}"
        f"{checks['double_confirmed']:>8}",
        flush=True,
    )


def print_profile(title: str, profile: dict[str, Any], top: int = 12) -> None:
    print(f"\nProfile of the bot, {title}: {profile['samples']:,} py-spy samples ({profile['mode']})")
    print("  by thread: " + ", ".join(f"{k} {v}%" for k, v in profile["by_thread_pct"].items()))
    print("  self (innermost frame):")
    for name, pct in profile["self_pct"][:top]:
        print(f"    {pct:5.1f}%  {name}")
    print("  inclusive (project code anywhere on the stack):")
    for name, pct in profile["project_inclusive_pct"][:top]:
        print(f"    {pct:5.1f}%  {name}")
    if profile["mode"] == "wall":
        busy = ", ".join(f"{k} {v}%" for k, v in profile["lane_busy_pct"].items())
        print(f"  event lanes busy (share of wall time on an event): {busy}")


def run(args: argparse.Namespace, stack: contextlib.ExitStack) -> dict[str, Any]:
    started = time.monotonic()
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    pg_url = stack.enter_context(postgres_schema(args.postgres)) if args.postgres else None
    export, rows = cached_export(args.accounts)
    print(f"Accounts: {len(rows):,} in {export}", flush=True)
    workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="icp-capturebench-")))
    LOGS.mkdir(parents=True, exist_ok=True)
    slack = CaptureStandIn(team_id=TEAM, channels=CHANNELS)
    slack.start()
    stack.callback(slack.stop)

    threads = inspect.signature(serve_http).parameters["threads"].default
    pg_replicas = sorted(set(args.replicas))
    bare: list[Server] = []
    for k in range(max(pg_replicas) if pg_url else 1):
        server = Server.start(
            f"bare-{k + 1}",
            [PYTHON, str(BARE_APP), "--host", "127.0.0.1", "--threads", str(threads)],
            base_env(slack),
            workdir,
            LOGS / f"bare-{k + 1}.log",
        )
        stack.callback(server.stop)
        bare.append(server)
    for server in bare:
        server.wait_up(None, timeout=60)

    mix = channel_mix(rows, args.events)
    rig = Rig(args, export, rows, mix, slack, bare, workdir, write_config(workdir), stack)
    setups, results = [], []
    expected: set[int] | None = None  # from `icp-bot tag` on the first database (same accounts)
    for label, url, replicas in (
        ("sqlite", f"sqlite:///{workdir / 'bench.db'}", [1]),
        *((("postgresql", pg_url, pg_replicas),) if pg_url else ()),
    ):
        setup, measured, expected = bench_database(label, url, rig, replicas, expected)
        setups.append(setup)
        results.extend(measured)
    in_capture = sum(1 for m in mix if m.channel in CAPTURED)
    return {
        "command": " ".join([Path(PYTHON).name, *sys.argv]),
        "machine": machine() | {"load_average_at_start": load_at_start},
        "settings": {
            "accounts": args.accounts,
            "events": args.events,
            "senders": args.senders,
            "retry_share": RETRY_SHARE,
            "warmup_events": WARMUP,
            "waitress_threads": threads,
            "bot_log_level": args.log_level,
            "capture_channels": list(CAPTURED),
            "messages_in_capture_channels": in_capture,
            "target_ratio": TARGET,
            "rates": "events/s: unique events (retries ride along) / seconds; bot: first send to the "
            "last of (last confirmation at the stand-in, last inbox event processed), with every "
            "expected note stored and confirmed and nothing pending; bare: first send to last 200, median of "
            f"{BARE_PASSES} passes",
        },
        "setup": setups,
        "results": results,
        "total_seconds": round(time.monotonic() - started, 1),
    }


def parse_replicas(value: str) -> list[int]:
    try:
        counts = sorted({int(v) for v in value.split(",") if v.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError("a list of replica counts, e.g. 1,2") from None
    if not counts or not set(counts) <= {1, 2}:
        raise argparse.ArgumentTypeError("replica counts are 1 and/or 2")
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, help="accounts imported (default 100,000; --small 2,000)")
    parser.add_argument("--events", type=int, help="events per measured run (default 1,500; --small 300)")
    parser.add_argument("--senders", type=int, default=4, help="concurrent senders (default 4)")
    parser.add_argument("--postgres", help="also run on this PostgreSQL database (in a scratch schema)")
    parser.add_argument(
        "--replicas", type=parse_replicas, default=[1, 2], help="bot replicas on PostgreSQL (default 1,2)"
    )
    parser.add_argument("--small", action="store_true", help="a quick run for CI: 2,000 accounts, 300 events")
    parser.add_argument(
        "--profile",
        nargs="?",
        const="gil",
        choices=("gil", "running", "wall"),
        help="sample the bot with py-spy in each measured run: the thread holding the GIL (gil, the "
        "default), every running thread, or every thread (wall)",
    )
    parser.add_argument("--log-level", default="INFO", help="the bot's ICP_BOT_LOG_LEVEL (default INFO)")
    parser.add_argument("--json", default=str(RESULTS / "capture.json"), help="where to write the results")
    args = parser.parse_args()
    args.accounts = args.accounts or (2_000 if args.small else 100_000)
    args.events = args.events or (300 if args.small else 1_500)
    if args.accounts < 10 or args.events < WARMUP or args.senders < 1:
        parser.error(f"--accounts must be at least 10, --events at least {WARMUP}, --senders at least 1")

    report, code = run_stopping_cleanly("capture", run, args)
    if report is None:
        return code
    m = report["machine"]
    print(
        f"\nMachine: {m['machine']}, {m['cpus']} cores, Python {m['python']}, load average at start "
        f"{m['load_average_at_start']}, at end {m['load_average_at_end']}"
    )
    print(f"P2 capture, {args.accounts:,} accounts, {args.senders} senders (target ratio >= {TARGET}):\n")
    for k, r in enumerate(report["results"]):
        print_row(r, header=k == 0)
    for r in report["results"]:
        if "profile" in r["bot"]:
            print_profile(f"{r['database']} x{r['replicas']}", r["bot"]["profile"])
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"\nWhole benchmark: {report['total_seconds']} s. Wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
