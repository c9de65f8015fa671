"""Two HTTP replicas of `icp-bot run --http` against one PostgreSQL database (README: "Several
replicas"), as behind a load balancer: every event reaches one replica and Slack's retry of it
the other, both at once.

Judged from outside: every outcome is one note with one confirmation, nothing is left pending,
`/icp-fit` answers the same on both, and the weekly digest, due while both start, posts once.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from bot.app import serialised_ddl
from bot.payloads import SlackSender
from storage.engine import make_engine
from tests.bot.blackbox import RunningBot, db_upgrade, write_config
from tests.bot.test_durability import ACCOUNTS, CHATTER, OUTCOMES
from tests.conftest import PostgresSchema

pytestmark = pytest.mark.postgres

EVENTS = 300
SENDERS = 4


def _config_with_digest_due(folder: Path) -> Path:
    """The test config, with the weekly digest due two minutes ago (UTC): each replica's start-up
    catch-up tries to post it."""
    path = write_config(folder).rename(folder / "replicas.yml")  # (start() writes icp.yml again)
    due = datetime.now(UTC) - timedelta(minutes=2)
    old = (
        "digest:\n  channel: C0DIGEST\n  day: monday\n"
        '  time: "09:00"            # 24-hour clock, in the timezone below\n'
        "  timezone: America/New_York\n"
    )
    assert old in path.read_text(encoding="utf-8"), "the example config changed; update this test"
    day = due.strftime("%A").lower()
    new = f'digest:\n  channel: C0DIGEST\n  day: {day}\n  time: "{due:%H:%M}"\n  timezone: UTC\n'
    path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    return path


def _texts() -> list[str]:
    texts = []
    for i in range(EVENTS):
        pool = OUTCOMES if i % 3 == 0 else CHATTER
        texts.append(pool[(i // 3) % len(pool)].format(account=ACCOUNTS[i % len(ACCOUNTS)]) + f" (#{i})")
    return texts


def _pending(database_url: str) -> int:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            query = text("SELECT count(*) FROM inbox_events WHERE state = 'pending'")
            return int(connection.execute(query).scalar_one())
    finally:
        engine.dispose()


def _digest_runs(database_url: str) -> list[tuple[str]]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return [(str(state),) for (state,) in connection.execute(text("SELECT state FROM digest_runs"))]
    finally:
        engine.dispose()


def _send_retry(sender: SlackSender, body: dict[str, Any], answers: list[int]) -> None:
    answers.append(sender.event(body, retry_num=1).status)


def _deliver(senders: list[SlackSender], bodies: list[dict[str, Any]]) -> Counter[int]:
    """Event i goes to replica i % 2 and, at the same moment, its retry to the other one."""
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def send(indexes: range) -> None:
        for i in indexes:
            first, other = senders[i % 2], senders[(i + 1) % 2]
            answers: list[int] = []
            retry = threading.Thread(target=_send_retry, args=(other, bodies[i], answers))
            retry.start()
            answers.append(first.event(bodies[i]).status)
            retry.join()
            with lock:
                statuses.update(answers)

    chunk = len(bodies) // SENDERS
    threads = [
        threading.Thread(target=send, args=(range(k * chunk, (k + 1) * chunk),)) for k in range(SENDERS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def test_two_replicas_capture_once_answer_alike_and_post_the_digest_once(tmp_path: Path) -> None:
    schema = PostgresSchema()  # skips without TEST_DATABASE_URL
    try:
        url = schema.schema_url
        db_upgrade(url)
        folder = tmp_path / "a"
        folder.mkdir()
        config = _config_with_digest_due(folder)
        with RunningBot.start(
            folder, mode="http", database_url=url, extra_env={"ICP_BOT_CONFIG": str(config)}
        ) as bot:
            replica = bot.replica("b")
            try:
                _run_traffic(bot, replica.sender)
            finally:
                replica.stop()
            assert "Traceback" not in bot.log() + replica.log()
    finally:
        schema.drop()


def _run_traffic(bot: RunningBot, other: SlackSender) -> None:
    texts = _texts()
    stamps = [f"{1_763_000_000 + i}.{i:06d}" for i in range(EVENTS)]
    w = bot.workspace
    bodies = [
        w.event_callback(w.message("C0DEALS", t, ts, user=f"U0REP{i % 5}"))
        for i, (t, ts) in enumerate(zip(texts, stamps, strict=True))
    ]
    statuses = _deliver([bot.sender, other], bodies)
    assert statuses == Counter({200: 2 * EVENTS})  # every delivery acknowledged, by both replicas

    # Every outcome once (an outcome: what `icp-bot tag` calls one, with the same data).
    batch = bot.folder / "traffic.jsonl"
    batch.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    done = bot.cli("tag", str(batch))
    assert done.returncode == 0, done.stderr
    tagged = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    expected = {stamps[i] for i, tag in enumerate(tagged) if tag["kind"]}
    assert len(expected) >= EVENTS // 4

    def captured() -> list[dict[str, Any]] | None:
        notes = [n for n in bot.notes() if n["channel"] == "C0DEALS" and n["ts"] in set(stamps)]
        return notes if len(notes) >= len(expected) and _pending(bot.env["DATABASE_URL"]) == 0 else None

    notes = bot.wait_for(captured, timeout=240, what="every outcome, from both replicas")
    by_ts = Counter(n["ts"] for n in notes)
    assert set(by_ts) == expected
    assert [ts for ts, n in by_ts.items() if n > 1] == []

    def confirmations() -> Counter[str] | None:
        replies = Counter(
            str(m["thread_ts"]) for m in bot.slack.messages_in("C0DEALS") if m.get("thread_ts") in expected
        )
        return replies if set(replies) == expected else None

    replies = bot.wait_for(confirmations, timeout=120, what="a confirmation for every note")
    assert [ts for ts, n in replies.items() if n > 1] == []

    # /icp-fit answers alike on both replicas.
    answers = []
    for sender in (bot.sender, other):
        start = len(bot.slack.calls)
        assert sender.command(w.slash_command("Contoso", bot.slack.response_url())).status == 200
        (answer,) = bot.wait_for(
            lambda start=start: bot.calls_since(start, "response_url"), what="the fit answer"
        )
        answers.append((answer.args.get("text"), answer.args.get("blocks")))
    assert answers[0] == answers[1] and "Contoso" in str(answers[0][0])

    # The digest due while both started: one run, one post.
    def digest_posts() -> list[dict[str, Any]] | None:
        return [m for m in bot.slack.messages_in("C0DIGEST") if not m.get("thread_ts")] or None

    posts = bot.wait_for(digest_posts, timeout=60, what="the digest")
    bot.settle(3)  # (a negative check: a second post would come from the other replica by now)
    assert len(digest_posts() or []) == len(posts) == 1
    assert _digest_runs(bot.env["DATABASE_URL"]) == [("posted",)]


def test_replicas_starting_together_create_library_tables_one_at_a_time() -> None:
    """The scheduler's table (and slack-sdk's) are created by the libraries at start, not by
    `icp-bot db upgrade`: replicas starting together check for them at the same moment. Under
    serialised_ddl the check and the CREATE of one replica finish before the next checks."""
    schema = PostgresSchema()  # skips without TEST_DATABASE_URL
    engine = make_engine(schema.schema_url)
    try:

        def create_if_missing() -> None:  # check, then a window in which another replica checks too
            with engine.begin() as connection:
                exists = connection.execute(text("SELECT to_regclass('library_table')")).scalar_one()
            time.sleep(0.3)
            if exists is None:
                with engine.begin() as connection:
                    connection.execute(text("CREATE TABLE library_table (id integer primary key)"))

        def race(create: Callable[[], None]) -> list[str]:
            errors: list[str] = []

            def start() -> None:
                try:
                    create()
                except Exception as error:
                    errors.append(type(error).__name__)

            threads = [threading.Thread(target=start) for _ in range(3)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            return errors

        assert race(create_if_missing) != []  # the race is real without the lock
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE library_table"))
        assert race(lambda: serialised_ddl(engine, create_if_missing)) == []
    finally:
        engine.dispose()
        schema.drop()
