"""Durable capture, proven by killing the bot: every event Slack saw acknowledged is captured once.

A burst of 1,000 signed message events goes to the bot over HTTP from four senders; the bot is
SIGKILLed in the middle of it. The events that got no answer are retried as Slack would (with
X-Slack-Retry-Num) once the bot is back. Afterwards every outcome message is one note (none lost,
none twice), every note has a confirmation, and nothing is left pending in the inbox.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import text

from storage.engine import make_engine
from tests.bot.blackbox import RunningBot, db_upgrade

ACCOUNTS = ["Acme Corp", "Fabrikam", "Woodgrove CU", "Contoso", "Litware", "Northwind", "Tailspin"]
OUTCOMES = [
    "Closed won {account}! 3-year deal, beat Gong on ease of use",
    "Lost {account} to Clari on price",
    "#churn {account} gave notice, champion left",
    "{account} rollout failed the security sign-off",
    "CL {account} - no decision, budget frozen",
]
CHATTER = [
    "meeting {account} next Tuesday",
    "who owns {account}?",
    "lunch anyone?",
    "can someone send me the {account} deck",
]
BURST = 1000
KILL_AFTER = 350  # answered events before the SIGKILL
SENDERS = 4


def _texts() -> list[str]:
    texts = []
    for i in range(BURST):
        account = ACCOUNTS[i % len(ACCOUNTS)]
        pool = OUTCOMES if i % 3 == 0 else CHATTER
        texts.append(pool[(i // 3) % len(pool)].format(account=account) + f" (#{i})")
    return texts


def _expected_outcomes(bot: RunningBot, texts: list[str], folder: Path) -> set[int]:
    """Which of the messages the bot's own tagger calls outcomes (`icp-bot tag`, same data)."""
    path = folder / "burst.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    done = bot.cli("tag", str(path))
    assert done.returncode == 0, done.stderr
    tags = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert len(tags) == len(texts)
    return {i for i, tag in enumerate(tags) if tag["kind"]}


def _inbox_pending(bot: RunningBot) -> int:
    engine = make_engine(bot.env["DATABASE_URL"])
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    text("SELECT count(*) FROM inbox_events WHERE state = 'pending'")
                ).scalar_one()
            )
    finally:
        engine.dispose()


def _send_and_kill(bot: RunningBot, bodies: list[dict[str, Any]]) -> tuple[int, set[int]]:
    """Four senders deliver the burst; the bot is SIGKILLed after KILL_AFTER answers. Returns
    how many were answered before the kill and which events got no answer."""
    answered: set[int] = set()
    unanswered: set[int] = set()
    lock = threading.Lock()
    killed = threading.Event()

    def send(indexes: range) -> None:
        for i in indexes:
            try:
                status = bot.sender.event(bodies[i]).status
            except OSError:  # connection refused or reset: the bot is dead
                status = 0
            with lock:
                (answered if status == 200 else unanswered).add(i)
                if len(answered) >= KILL_AFTER and not killed.is_set():
                    killed.set()
                    bot.kill()

    chunk = len(bodies) // SENDERS
    threads = [
        threading.Thread(target=send, args=(range(k * chunk, (k + 1) * chunk),)) for k in range(SENDERS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert killed.is_set() and unanswered, "the kill came too late to test anything"
    return len(answered), unanswered


def _retry_like_slack(bot: RunningBot, bodies: list[dict[str, Any]], unanswered: set[int]) -> int:
    """Slack retries what it got no answer for, up to three times, with X-Slack-Retry-Num."""
    retries = 0
    for attempt in (1, 2, 3):
        for i in sorted(unanswered):
            retries += 1
            if bot.sender.event(bodies[i], retry_num=attempt).status == 200:
                unanswered.discard(i)
        if not unanswered:
            break
    assert unanswered == set(), f"{len(unanswered)} events never acknowledged"
    return retries


def test_sigkill_in_a_burst_loses_nothing_and_duplicates_nothing(db_url: str, tmp_path: Path) -> None:
    database = db_url.split(":", 1)[0]
    if database.startswith("postgresql"):  # a server database is migrated by the operator
        db_upgrade(db_url)
    texts = _texts()
    with RunningBot.start(tmp_path / "bot", mode="http", database_url=db_url) as bot:
        expected = _expected_outcomes(bot, texts, tmp_path)
        assert len(expected) >= BURST // 4  # the burst really is full of outcomes
        w = bot.workspace
        stamps = [f"{1_762_000_000 + i}.{i:06d}" for i in range(BURST)]
        bodies = [
            w.event_callback(w.message("C0DEALS", text, ts, user=f"U0REP{i % 7}"))
            for i, (text, ts) in enumerate(zip(texts, stamps, strict=True))
        ]
        answered_before_kill, unanswered = _send_and_kill(bot, bodies)
        bot.restart()
        retries = _retry_like_slack(bot, bodies, unanswered)

        def all_captured() -> list[dict[str, Any]] | None:
            notes = [n for n in bot.notes() if n["channel"] == "C0DEALS" and n["ts"] in set(stamps)]
            return notes if len(notes) >= len(expected) and _inbox_pending(bot) == 0 else None

        notes = bot.wait_for(all_captured, timeout=240, what="every outcome of the burst")
        by_ts = Counter(n["ts"] for n in notes)
        captured = {stamps.index(ts) for ts in by_ts}
        lost = expected - captured
        duplicated = [ts for ts, count in by_ts.items() if count > 1]
        unexpected = captured - expected

        # Every note confirmed in its thread; a confirmation posted twice would need a kill
        # between Slack's answer and the bot recording it.
        def confirmations() -> Counter[str] | None:
            replies = Counter(
                str(m.get("thread_ts"))
                for m in bot.slack.messages_in("C0DEALS")
                if m.get("thread_ts") in by_ts and m.get("ts") != m.get("thread_ts")
            )
            return replies if set(replies) >= set(by_ts) else None

        replies = bot.wait_for(confirmations, timeout=240, what="a confirmation for every note")
        twice = sum(1 for count in replies.values() if count > 1)
        print(
            f"\n{database}: events {BURST}, answered before the kill {answered_before_kill}, "
            f"retried {retries}, kills 1, outcomes {len(expected)}, notes {len(notes)}, "
            f"lost {len(lost)}, duplicated {len(duplicated)}, confirmations posted twice {twice}"
        )
        assert lost == set()
        assert duplicated == []
        assert unexpected == set()
        assert twice <= SENDERS  # at most one per lane in flight at the moment of the kill
