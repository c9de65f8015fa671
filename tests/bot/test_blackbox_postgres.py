"""The running bot on PostgreSQL: migrated with `icp-bot db upgrade`, exactly-once under
concurrent deliveries, edits and deletes visible in `notes export`."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.standin import SlackStandIn
from tests.bot.blackbox import ICP_BOT, RunningBot, db_upgrade
from tests.conftest import PostgresSchema

pytestmark = pytest.mark.postgres
DEALS = "C0DEALS"


@pytest.fixture(scope="module")
def pg_bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBot]:
    schema = PostgresSchema()
    folder = tmp_path_factory.mktemp("bot-pg")
    try:
        # A server database is never migrated implicitly: `db upgrade` first, as an operator would.
        db_upgrade(schema.schema_url, folder)
        with RunningBot.start(folder, mode="http", database_url=schema.schema_url) as bot:
            yield bot
    finally:
        schema.drop()


def test_concurrent_retries_and_the_mention_twin_leave_one_note_on_postgres(pg_bot: RunningBot) -> None:
    bot = pg_bot
    start = len(bot.slack.calls)
    ts = bot.next_ts()
    text = "<@U0BOT> Lost Contoso to Gong on price, $48k ARR"
    body = bot.workspace.event_callback(bot.workspace.message(DEALS, text, ts))
    twin = bot.workspace.event_callback(bot.workspace.app_mention(DEALS, text, ts))
    statuses: list[int] = []

    def deliver(payload: dict[str, object], retry: int) -> None:
        statuses.append(bot.sender.event(payload, retry_num=retry).status)

    threads = [threading.Thread(target=deliver, args=(body, n)) for n in range(4)]
    threads.append(threading.Thread(target=deliver, args=(twin, 0)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 5
    bot.wait_for(lambda: bot.calls_since(start, "chat.postMessage"))
    bot.settle()
    assert len([n for n in bot.notes() if n["ts"] == ts]) == 1
    assert len([c for c in bot.calls_since(start, "chat.postMessage") if c.args.get("thread_ts") == ts]) == 1


def test_edit_and_delete_on_postgres(pg_bot: RunningBot) -> None:
    bot = pg_bot
    start = len(bot.slack.calls)
    ts = bot.next_ts()
    bot.sender.event(bot.workspace.event_callback(bot.workspace.message(DEALS, "Lost Contoso on price", ts)))
    bot.wait_for(lambda: bot.calls_since(start, "chat.postMessage"))
    bot.sender.event(
        bot.workspace.event_callback(
            bot.workspace.message_changed(DEALS, ts, "Won Contoso", "Lost Contoso on price")
        )
    )
    bot.wait_for(lambda: bot.calls_since(start, "chat.update"))
    note = bot.note_for(ts)
    assert note is not None and note["kind"] == "win"
    bot.sender.event(bot.workspace.event_callback(bot.workspace.message_deleted(DEALS, ts, "Won Contoso")))
    bot.wait_for(lambda: bot.calls_since(start, "chat.delete"))
    note = bot.note_for(ts)
    assert note is not None and note["status"] == "retracted"


def test_run_refuses_an_unmigrated_server_database(tmp_path: Path) -> None:
    schema = PostgresSchema()
    slack = SlackStandIn().start()
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": schema.schema_url,
        "SLACK_BOT_TOKEN": slack.token,
        "SLACK_SIGNING_SECRET": "8f742231b10e8888abcd99yyyzzz85a5",
        "SLACK_API_URL": slack.base_url,
    }
    try:
        done = subprocess.run(
            [*ICP_BOT, "run", "--http"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        slack.stop()
        schema.drop()
    assert done.returncode == 1
    assert "icp-bot db upgrade" in done.stderr and len(done.stderr.strip().splitlines()) == 1
