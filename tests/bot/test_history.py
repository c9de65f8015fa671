"""Catch-up after downtime and backfill (bot.history), against the Slack stand-in.

In-process: pagination, thread replies, rate limits, idempotency with live capture, edits made
while the bot was down, the channel cursor. Black-box: `icp-bot run` stopped and started again on
the same database, and `icp-bot backfill`, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from slack_sdk import WebClient
from sqlalchemy.orm import Session, sessionmaker

from bot.cli import main
from bot.history import (
    HistoryReader,
    HistorySummary,
    backfill,
    catch_up_all,
    read_channel_history,
    schedule_history_catch_up,
)
from bot.listeners.events import handle_message
from bot.payloads import SlackSender
from bot.services import BotServices
from bot.standin import SlackStandIn
from insights.capture import iter_notes
from insights.config import Config
from insights.history import advance_cursor, channel_cursors
from insights.tagging import Tagger
from tests.bot.blackbox import ICP_BOT, SECRET, RunningBot, db_upgrade, free_port
from tests.bot.inprocess import make_services
from tests.conftest import SAMPLE_ACCOUNTS, PostgresSchema

DEALS, TEAM = "C0DEALS", "T1"
NOW = datetime.now(UTC)


def stamp(ago: timedelta, n: int = 0) -> str:
    """A Slack ts `ago` before the start of this test module, plus n seconds."""
    return f"{(NOW - ago).timestamp() + n:.6f}"


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn() as standin:
        yield standin


@pytest.fixture
def services(
    session_factory: sessionmaker[Session], config: Config, tagger: Tagger, slack: SlackStandIn
) -> BotServices:
    return make_services(session_factory, config, slack, channels=(DEALS,))


def _notes(services: BotServices) -> list[Any]:
    return list(iter_notes(services.ctx.session_factory, TEAM))


def _confirmed(slack: SlackStandIn) -> list[str]:
    """The message ts each thread confirmation answered."""
    return [str(c.args.get("thread_ts")) for c in slack.calls_to("chat.postMessage") if c.status == 200]


def _reader(services: BotServices, max_waits: int = 4) -> HistoryReader:
    return HistoryReader(services.client, pause=0, max_waits=max_waits)


def _fill(slack: SlackStandIn, tagger: Tagger, count: int, start: str) -> tuple[list[str], list[str]]:
    """`count` messages a second apart from `start`, every ninth an outcome; (all ts, outcome ts)."""
    stamps, outcomes = [], []
    names = ["Contoso", "Acme Corp", "Fabrikam Systems", "Northwind"]
    for i in range(count):
        text = f"Lost {names[i % 4]} to Gong on price" if i % 9 == 0 else f"standup notes, item {i}"
        ts = f"{float(start) + i + 1:.6f}"
        slack.post_history(DEALS, text, ts=ts)
        stamps.append(ts)
        if tagger.tag(text).kind is not None:
            outcomes.append(ts)
    return stamps, outcomes


# ---------------------------------------------------------------------------------------------
# The stand-in's history, as Slack serves it


def test_the_standin_pages_history_and_replies_like_slack(slack: SlackStandIn) -> None:
    client = WebClient(token=slack.token, base_url=slack.base_url)
    stamps = [slack.post_history(DEALS, f"m{i}", ts=f"1700000{i:03d}.000100") for i in range(40)]
    replies = [slack.post_reply(DEALS, stamps[5], f"r{i}", ts=f"1700001{i:03d}.000100") for i in range(3)]
    window = {"channel": DEALS, "oldest": stamps[10], "latest": stamps[20]}

    def ts_of(page: Any) -> list[str]:
        return [m["ts"] for m in page["messages"]]

    assert ts_of(client.conversations_history(**window)) == stamps[19:10:-1]  # newest first, exclusive
    assert ts_of(client.conversations_history(**window, inclusive=True)) == stamps[20:9:-1]
    first = client.conversations_history(channel=DEALS, limit=15)
    slack.post_history(DEALS, "a newer message does not shift the pages", ts="1700000999.000100")
    second = client.conversations_history(
        channel=DEALS, limit=15, cursor=first["response_metadata"]["next_cursor"]
    )
    assert ts_of(first) + ts_of(second) == stamps[39:9:-1] and second["has_more"] is True
    (parent,) = client.conversations_history(channel=DEALS, oldest=stamps[4], latest=stamps[6])["messages"]
    assert parent["reply_count"] == 3 and parent["latest_reply"] == replies[-1]
    assert not set(replies) & set(ts_of(client.conversations_history(channel=DEALS, limit=999)))
    page = client.conversations_replies(channel=DEALS, ts=stamps[5], limit=2)
    rest = client.conversations_replies(
        channel=DEALS, ts=stamps[5], cursor=page["response_metadata"]["next_cursor"]
    )
    assert ts_of(page) == [stamps[5], *replies[:2]] and ts_of(rest) == [stamps[5], replies[2]]
    slack.history_page_cap = 15  # Slack's cap for apps outside the Marketplace
    assert len(client.conversations_history(channel=DEALS, limit=200)["messages"]) == 15


# ---------------------------------------------------------------------------------------------
# Reading history


def test_three_pages_are_read_newest_first_and_captured_oldest_first_with_the_cursor_per_batch(
    services: BotServices, slack: SlackStandIn, tagger: Tagger
) -> None:
    sf = services.ctx.session_factory
    cursor = stamp(timedelta(hours=3))
    stamps, outcomes = _fill(slack, tagger, 450, cursor)
    assert len(outcomes) == 50
    seen: list[str | None] = []

    def progress(phase: str, _: HistorySummary) -> None:
        if phase == "processed":
            seen.append(channel_cursors(sf, TEAM).get(DEALS))

    summary = read_channel_history(services, DEALS, since=cursor, reader=_reader(services), progress=progress)

    assert (summary.pages, summary.messages, summary.captured, summary.known) == (3, 450, 50, 0)
    assert summary.complete and summary.rate_limited_waits == 0
    calls = slack.calls_to("conversations.history")
    assert [c.args["limit"] for c in calls] == ["200"] * 3 and {c.args["oldest"] for c in calls} == {cursor}
    assert [n.ts for n in _notes(services)] == outcomes  # stored oldest first
    assert seen == [stamps[199], stamps[399], stamps[449]]  # the cursor after each batch of 200
    assert _confirmed(slack) == []  # no confirm_after: silent


def test_thread_replies_newer_than_the_cursor_are_captured_once(
    services: BotServices, slack: SlackStandIn
) -> None:
    cursor = stamp(timedelta(hours=5))
    old_parent = slack.post_history(DEALS, "Contoso renewal thread", ts=stamp(timedelta(days=1)))
    slack.post_reply(DEALS, old_parent, "Lost Contoso to Gong on price", ts=stamp(timedelta(hours=6)))
    missed = slack.post_reply(
        DEALS, old_parent, "Closed won Fabrikam Systems, 120k ARR", ts=stamp(timedelta(hours=4))
    )
    slack.post_reply(
        DEALS, old_parent, "Won Contoso", user="U0BOT", bot_id="B0BOT", ts=stamp(timedelta(hours=3))
    )
    broadcast = slack.post_reply(
        DEALS, old_parent, "Acme Corp churned at renewal, budget cuts", ts=stamp(timedelta(hours=2)),
        subtype="thread_broadcast",
    )  # fmt: skip
    new_parent = slack.post_history(DEALS, "Northwind deal review", ts=stamp(timedelta(hours=1)))
    new_reply = slack.post_reply(
        DEALS, new_parent, "Lost Northwind to Clari, no decision", ts=stamp(timedelta(minutes=30))
    )
    quiet_parent = slack.post_history(DEALS, "old thread", ts=stamp(timedelta(days=2)))
    slack.post_reply(DEALS, quiet_parent, "Won Contoso", ts=stamp(timedelta(days=2), 60))  # before the cursor

    summary = catch_up_all(services, starts={DEALS: cursor}, pause=0)

    notes = {n.ts: n for n in _notes(services)}
    assert set(notes) == {missed, broadcast, new_reply}  # the broadcast once; not the bot's reply
    assert notes[missed].thread_ts == old_parent and notes[new_reply].thread_ts == new_parent
    assert summary.captured == 3 and summary.complete
    assert {c.args["ts"] for c in slack.calls_to("conversations.replies")} == {old_parent, new_parent}
    assert sorted(_confirmed(slack)) == sorted([old_parent, old_parent, new_parent])  # in their threads


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # Slack's side: one database will do
def test_a_429_on_a_history_page_is_waited_out_and_counted(
    services: BotServices, slack: SlackStandIn, tagger: Tagger
) -> None:
    cursor = stamp(timedelta(hours=3))
    _, outcomes = _fill(slack, tagger, 250, cursor)

    def progress(phase: str, summary: HistorySummary) -> None:
        if phase == "read" and summary.pages == 1:
            slack.rate_limit_next("conversations.history", retry_after=1)

    summary = read_channel_history(services, DEALS, since=cursor, reader=_reader(services), progress=progress)

    assert summary.rate_limited_waits == 1 and summary.pages == 2 and summary.complete
    assert summary.captured == len(outcomes)
    assert [c.status for c in slack.calls_to("conversations.history")] == [200, 429, 200]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # Slack's side: one database will do
def test_when_slack_keeps_refusing_the_run_stops_cleanly_and_the_next_one_resumes(
    services: BotServices, slack: SlackStandIn, tagger: Tagger
) -> None:
    sf = services.ctx.session_factory
    cursor = stamp(timedelta(hours=3))
    advance_cursor(sf, TEAM, DEALS, cursor)
    stamps, outcomes = _fill(slack, tagger, 250, cursor)
    newest_page = [ts for ts in outcomes if ts in stamps[50:]]

    def progress(phase: str, summary: HistorySummary) -> None:
        if phase == "read" and summary.pages == 1:
            slack.rate_limit_next("conversations.history", times=5, retry_after=0)

    first = read_channel_history(
        services, DEALS, since=cursor, reader=_reader(services, max_waits=1), progress=progress
    )

    assert not first.complete and "rate-limiting" in first.stopped[0]
    assert first.rate_limited_waits == 1 and first.pages == 1
    assert first.captured == len(newest_page)  # what was read is captured
    assert channel_cursors(sf, TEAM)[DEALS] == cursor  # a gap below what was read: the cursor stays
    slack.state.failures.clear()

    second = read_channel_history(services, DEALS, since=cursor, reader=_reader(services))

    assert second.complete and second.known == first.captured
    assert first.captured + second.captured == len(outcomes) == len(_notes(services))
    assert channel_cursors(sf, TEAM)[DEALS] > cursor


# ---------------------------------------------------------------------------------------------
# Catch-up and live capture together


def _live(services: BotServices, slack: SlackStandIn, text: str, ts: str) -> None:
    """A message that is in the channel's history and was delivered to the bot live."""
    slack.post_history(DEALS, text, ts=ts)
    event = {"type": "message", "channel": DEALS, "user": "U0REP", "text": text, "ts": ts}
    handle_message(event, {"event_id": f"Ev{ts}"}, services)


def test_a_message_captured_live_and_read_again_is_one_note_with_one_confirmation(
    services: BotServices, slack: SlackStandIn
) -> None:
    cursor = stamp(timedelta(hours=2))
    live = stamp(timedelta(hours=1))
    _live(services, slack, "Lost Contoso to Gong on price", live)
    missed = slack.post_history(
        DEALS, "Closed won Fabrikam Systems, 120k ARR", ts=stamp(timedelta(minutes=30))
    )
    chatter = slack.post_history(DEALS, "anyone free for lunch?", ts=stamp(timedelta(minutes=20)))

    first = catch_up_all(services, starts={DEALS: cursor}, pause=0)
    again = catch_up_all(services, pause=0)

    assert (first.captured, first.known, first.confirmed) == (1, 1, 1)
    assert (again.captured, again.known, again.confirmed, again.to_process) == (0, 0, 0, 0)  # from the cursor
    assert sorted(n.ts for n in _notes(services)) == sorted([live, missed])
    assert sorted(_confirmed(slack)) == sorted([live, missed])  # one each: live's, then the missed one's
    assert channel_cursors(services.ctx.session_factory, TEAM)[DEALS] == chatter  # the newest message read


def test_messages_edited_while_down_take_the_edit_path(services: BotServices, slack: SlackStandIn) -> None:
    cursor = stamp(timedelta(hours=2))
    retagged, withdrawn = stamp(timedelta(hours=1)), stamp(timedelta(minutes=50))
    _live(services, slack, "Lost Contoso to Gong on price", retagged)
    _live(services, slack, "Lost Northwind to Clari, no decision", withdrawn)
    slack.edit_history(DEALS, retagged, "Won Contoso")
    slack.edit_history(DEALS, withdrawn, "sorry, wrong channel")

    summary = catch_up_all(services, starts={DEALS: cursor}, pause=0)

    assert (summary.updated, summary.retracted, summary.captured) == (1, 1, 0)
    notes = {n.ts: n for n in _notes(services)}
    assert notes[retagged].kind == "win" and notes[retagged].text == "Won Contoso"
    assert notes[withdrawn].status == "retracted" and notes[withdrawn].retracted_reason == "edited"
    (update,) = slack.calls_to("chat.update")
    assert update.args["ts"] == notes[retagged].confirmation_ts
    (delete,) = slack.calls_to("chat.delete")
    assert delete.args["ts"] == notes[withdrawn].confirmation_ts and delete.status == 200
    assert len(slack.calls_to("chat.postMessage")) == 2  # nothing new posted
    again = catch_up_all(services, starts={DEALS: cursor}, pause=0)  # the same window once more
    assert (again.updated, again.retracted, again.known) == (0, 0, 2)


# ---------------------------------------------------------------------------------------------
# The cursor


def test_a_channel_without_a_cursor_starts_now_and_reads_nothing(
    services: BotServices, slack: SlackStandIn
) -> None:
    sf = services.ctx.session_factory
    slack.post_history(DEALS, "Lost Contoso to Gong on price", ts=stamp(timedelta(hours=2)))
    slack.post_history(DEALS, "Closed won Fabrikam Systems, 120k ARR", ts=stamp(timedelta(minutes=1)))
    moment = datetime.now(UTC) + timedelta(seconds=1)

    fresh = catch_up_all(services, pause=0, now=lambda: moment)

    assert fresh.started == 1 and fresh.captured == 0 and _notes(services) == []
    assert channel_cursors(sf, TEAM) == {DEALS: f"{moment.timestamp():.6f}"}
    assert slack.calls_to("conversations.history") == []  # a fresh install costs Slack nothing
    later = slack.post_history(
        DEALS, "Lost Northwind to Clari, no decision", ts=f"{moment.timestamp() + 1:.6f}"
    )

    caught = catch_up_all(services, pause=0)

    assert caught.captured == 1 and caught.confirmed == 1 and _confirmed(slack) == [later]
    assert channel_cursors(sf, TEAM) == {DEALS: later}


def test_only_the_last_24_hours_are_confirmed_and_backfill_never_moves_the_cursor_back(
    services: BotServices, slack: SlackStandIn
) -> None:
    sf = services.ctx.session_factory
    cursor = stamp(timedelta(days=2))
    advance_cursor(sf, TEAM, DEALS, cursor)
    older = slack.post_history(DEALS, "Lost Contoso to Gong on price", ts=stamp(timedelta(hours=30)))
    recent = slack.post_history(DEALS, "Closed won Fabrikam Systems, 120k ARR", ts=stamp(timedelta(hours=3)))

    summary = catch_up_all(services, pause=0)

    assert summary.captured == 2 and _confirmed(slack) == [recent]  # the 30-hour-old one silently
    assert channel_cursors(sf, TEAM)[DEALS] == recent
    ancient = slack.post_history(DEALS, "Lost Northwind to Clari, no decision", ts=stamp(timedelta(days=40)))

    back = backfill(services, DEALS, since=NOW - timedelta(days=41), until=NOW - timedelta(days=39), pause=0)

    assert back.captured == 1 and _confirmed(slack) == [recent]  # silent by default
    assert channel_cursors(sf, TEAM)[DEALS] == recent  # never backwards
    assert {n.ts for n in _notes(services)} == {older, recent, ancient}


def test_a_backfill_that_leaves_a_gap_before_the_cursor_does_not_move_it(
    services: BotServices, slack: SlackStandIn
) -> None:
    sf = services.ctx.session_factory
    cursor = stamp(timedelta(days=5))
    advance_cursor(sf, TEAM, DEALS, cursor)
    slack.post_history(DEALS, "Lost Contoso to Gong on price", ts=stamp(timedelta(days=4)))  # in the gap
    newest = slack.post_history(DEALS, "Closed won Fabrikam Systems, 120k ARR", ts=stamp(timedelta(days=1)))

    gap = backfill(services, DEALS, since=NOW - timedelta(days=2), pause=0)
    assert gap.captured == 1 and channel_cursors(sf, TEAM)[DEALS] == cursor

    covering = backfill(services, DEALS, since=NOW - timedelta(days=6), pause=0)
    assert (covering.captured, covering.known) == (1, 1)
    assert channel_cursors(sf, TEAM)[DEALS] == newest


def test_the_bots_catch_up_reads_on_from_where_it_read_not_from_where_live_capture_moved_the_cursor(
    services: BotServices, slack: SlackStandIn
) -> None:
    sf = services.ctx.session_factory
    down_since = stamp(timedelta(hours=3))
    advance_cursor(sf, TEAM, DEALS, down_since)
    scheduler = BackgroundScheduler(timezone="UTC", jobstores={"process": MemoryJobStore()})
    catch_up = schedule_history_catch_up(scheduler, services, every_minutes=10)
    scheduler.start(paused=True)  # the jobs as the bot gets them, run by hand below
    try:
        start, every = (
            scheduler.get_job(i, jobstore="process")
            for i in (f"history-catch-up-start-{services.team_id}", f"history-catch-up-{services.team_id}")
        )
        assert start is not None and every is not None and every.trigger.interval == timedelta(minutes=10)
    finally:
        scheduler.shutdown(wait=False)
    missed_while_down = slack.post_history(
        DEALS, "Lost Contoso to Gong on price", ts=stamp(timedelta(hours=2))
    )
    _live(services, slack, "thanks all", stamp(timedelta(hours=1)))
    advance_cursor(sf, TEAM, DEALS, stamp(timedelta(hours=1)))  # the live path moves the cursor

    first = catch_up.run_at_start()
    lost_while_up = slack.post_history(
        DEALS, "Closed won Fabrikam Systems, 120k ARR", ts=stamp(timedelta(minutes=30))
    )
    later = stamp(timedelta(minutes=10))
    _live(services, slack, "anyone free for lunch?", later)
    advance_cursor(sf, TEAM, DEALS, later)  # a live message after the lost one moved the cursor past it
    second = catch_up.run()

    assert first.captured == 1 and second.captured == 1
    assert {n.ts for n in _notes(services)} == {missed_while_down, lost_while_up}
    assert catch_up.run().messages == 0  # nothing new
    assert channel_cursors(sf, TEAM)[DEALS] == later
    catch_up.stop()  # at shutdown
    calls = len(slack.calls)
    assert catch_up.run().channels == 0 and len(slack.calls) == calls


# ---------------------------------------------------------------------------------------------
# icp-bot backfill (in-process, on each database)


@pytest.fixture
def cli_slack(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackStandIn]:
    with SlackStandIn() as standin:
        monkeypatch.setenv("SLACK_BOT_TOKEN", standin.token)
        monkeypatch.setenv("SLACK_API_URL", standin.base_url)
        assert main(["accounts", "import", str(SAMPLE_ACCOUNTS)]) == 0
        yield standin


@pytest.fixture
def bare_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackStandIn]:
    """For refusals, which touch no data: a fresh SQLite database, no accounts."""
    monkeypatch.chdir(tmp_path)
    for name in ("ICP_BOT_CONFIG", "ICP_BOT_TEAM_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'bare.db'}")
    with SlackStandIn() as standin:
        monkeypatch.setenv("SLACK_BOT_TOKEN", standin.token)
        monkeypatch.setenv("SLACK_API_URL", standin.base_url)
        yield standin


def _day(ago: timedelta) -> str:
    return (NOW - ago).astimezone(UTC).date().isoformat()


def test_backfill_captures_older_history_silently_and_twice_changes_nothing(
    cli_slack: SlackStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    for i, text in enumerate(["Lost Contoso to Gong on price", "thanks all", "Won Acme Corp expansion"]):
        cli_slack.post_history(DEALS, text, ts=stamp(timedelta(days=10), i))
    capsys.readouterr()

    assert main(["backfill", "--channel", DEALS, "--since", _day(timedelta(days=12))]) == 0
    first = capsys.readouterr()
    assert main(["backfill", "--channel", DEALS, "--since", _day(timedelta(days=12))]) == 0
    second = capsys.readouterr()

    assert "3 messages read, 2 outcomes captured, 0 already known" in first.out
    assert "3 messages read, 0 outcomes captured, 2 already known" in second.out
    assert len(first.out.strip().splitlines()) == 1
    assert "read 1 page, 3 messages" in first.err and "2 outcomes captured" in first.err
    assert cli_slack.calls_to("chat.postMessage") == []
    assert main(["notes", "export"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--channel", "#deals", "--since", "2026-01-01"], "--channel must be a channel ID"),
        (["--channel", DEALS, "--since", "last week"], "--since must be a date like"),
        (["--channel", DEALS, "--since", "2999-01-01"], "is in the future"),
        (["--channel", DEALS, "--since", "2026-02-01", "--until", "2026-01-01"], "is before --since"),
        (["--channel", "C0DIGEST", "--since", "2026-01-01"], "not a capture channel"),
    ],
)
def test_backfill_refuses_bad_input_in_one_line(
    bare_cli: SlackStandIn, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    capsys.readouterr()
    assert main(["backfill", *args]) == 1
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("error", ["not_in_channel", "channel_not_found"])
def test_backfill_explains_slacks_refusal(
    bare_cli: SlackStandIn, capsys: pytest.CaptureFixture[str], error: str
) -> None:
    bare_cli.fail_next("conversations.history", error)
    capsys.readouterr()
    assert main(["backfill", "--channel", DEALS, "--since", _day(timedelta(days=3))]) == 1
    err = capsys.readouterr().err
    assert error in err and "invite the bot" in err and len(err.strip().splitlines()) == 1


def test_backfill_needs_the_bot_token(
    bare_cli: SlackStandIn, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLACK_BOT_TOKEN")
    assert main(["backfill", "--channel", DEALS, "--since", "2026-01-01"]) == 1
    assert "SLACK_BOT_TOKEN is not set" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Black-box: the bot down and up again on the same database, then `icp-bot backfill`


def _stop_process(bot: RunningBot) -> None:
    bot.process.send_signal(signal.SIGTERM)
    bot.process.wait(timeout=20)


def _start_again(bot: RunningBot) -> RunningBot:
    """`icp-bot run` again with the same database and stand-in (the stand-in stays up)."""
    port = free_port()
    with (bot.folder / "bot.log").open("ab") as log:
        process = subprocess.Popen(
            [*ICP_BOT, "run", "--http", "--port", str(port), "--host", "127.0.0.1"],
            env=bot.env,
            cwd=bot.folder,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    sender = SlackSender(url=f"http://127.0.0.1:{port}/slack/events", secret=SECRET)
    again = RunningBot(bot.folder, bot.slack, process, bot.env, sender, "http", port)
    again._wait_until_up()
    return again


def _wait_for_start_catch_up(bot: RunningBot) -> None:
    """Wait for the start-up catch-up's summary: a fresh install sets both channels' cursors."""
    bot.wait_for(lambda: "history catch-up: 2 channels" in bot.log(), what="the start-up history catch-up")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None  # RunningBot's own SQLite file
        return
    schema = PostgresSchema()
    try:
        db_upgrade(schema.schema_url, tmp_path)
        yield schema.schema_url
    finally:
        schema.drop()


def test_the_bot_catches_up_after_downtime_and_backfill_is_idempotent(
    tmp_path: Path, database_url: str | None
) -> None:
    bot = RunningBot.start(tmp_path / "bot", mode="http", database_url=database_url)
    try:
        _wait_for_start_catch_up(bot)  # C0DEALS and #churn get their cursors
        live_ts = f"{datetime.now(UTC).timestamp():.6f}"
        live_text = "Lost Contoso to Gong on price, $48k ARR"
        bot.slack.post_history(DEALS, live_text, ts=live_ts)
        bot.sender.event(bot.workspace.event_callback(bot.workspace.message(DEALS, live_text, live_ts)))
        bot.wait_for(lambda: live_ts in _confirmed(bot.slack), what="the live confirmation")
        _stop_process(bot)

        missed = {}
        for text in ["Closed won Fabrikam Systems, 120k ARR", "anyone free for lunch?",
                     "Acme Corp churned at renewal, budget cuts", "thanks all"]:  # fmt: skip
            ts = f"{datetime.now(UTC).timestamp():.6f}"
            bot.slack.post_history(DEALS, text, ts=ts)
            missed[ts] = text
        outcomes = [ts for ts, text in missed.items() if "Fabrikam" in text or "churned" in text]
        before = len(bot.slack.calls)

        bot = _start_again(bot)
        bot.wait_for(
            lambda: set(outcomes) <= set(_confirmed(bot.slack)), what="confirmations of the missed outcomes"
        )
        bot.settle(1.0)
        after = [str(c.args.get("thread_ts")) for c in bot.calls_since(before, "chat.postMessage")]
        assert sorted(after) == sorted(outcomes)  # none again for the live one
        assert _confirmed(bot.slack).count(live_ts) == 1

        texts = ["Lost Northwind to Clari, no decision", "lunch?", "Won Acme Corp expansion"]
        old = [
            bot.slack.post_history(DEALS, text, ts=stamp(timedelta(days=20), i))
            for i, text in enumerate(texts)
        ]
        window = ["--since", _day(timedelta(days=21)), "--until", _day(timedelta(days=19))]
        runs = [bot.cli("backfill", "--channel", DEALS, *window) for _ in range(2)]
        for run in runs:
            assert run.returncode == 0, run.stderr
        assert "2 outcomes captured, 0 already known" in runs[0].stdout
        assert "0 outcomes captured, 2 already known" in runs[1].stdout
        assert "read 1 page" in runs[0].stderr
        assert not {old[0], old[2]} & set(_confirmed(bot.slack))  # backfill is silent
        notes = bot.notes()
        assert sorted(n["ts"] for n in notes) == sorted([live_ts, *outcomes, old[0], old[2]])  # once each
    finally:
        bot.stop()
