"""When Slack's Web API misbehaves (issue 6): 429 storms, `ok: false` refusals, slow answers and
timeouts. The note a person wrote is kept exactly once, the failure is told in one clear log line,
and the bot keeps acknowledging and capturing.

Black-box (`icp-bot run` in HTTP mode against the stand-in) where the real process matters: its
thread pools, the event worker, the real client's retry handlers. In-process for the client
timeout, which the running bot sets to 15 s.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from sqlalchemy import select, text, update

from bot.app import make_web_client
from bot.settings import Settings
from bot.standin import RecordedCall
from storage.models import InboxEvent, Note
from tests.bot.blackbox import RunningBot
from tests.bot.test_http_fuzz import FuzzBot, Request, fuzz_bot_on

OUTCOME = "Lost Contoso to Gong on price"
OTHER_OUTCOME = "Fourth Coffee not renewing in Jan, moving to ChurnZero. 212k"


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBot]:
    with RunningBot.start(tmp_path_factory.mktemp("faults"), mode="http") as running:
        yield running


# -- helpers ------------------------------------------------------------------------------------------


def rate_limit_retries() -> int:
    """How many times the bot's Web API client retries a 429 (bot/app.py, make_web_client)."""
    settings = Settings(
        database_url="sqlite://",
        config_path=Path("icp.yml"),
        config_is_bundled=False,
        team_id=None,
        log_level="INFO",
    )
    client = make_web_client(settings)
    (handler,) = [h for h in client.retry_handlers if isinstance(h, RateLimitErrorRetryHandler)]
    return handler.max_retry_count


def attempts_to_confirm(bot: RunningBot, ts: str) -> list[RecordedCall]:
    """Every chat.postMessage the bot tried for the message at `ts` (refused or not)."""
    return [c for c in bot.slack.calls_to("chat.postMessage") if c.args.get("thread_ts") == ts]


def confirmed(bot: RunningBot, ts: str) -> list[RecordedCall]:
    return [c for c in attempts_to_confirm(bot, ts) if c.status == 200]


def replies(bot: RunningBot, ts: str, channel: str = "C0DEALS") -> list[dict[str, object]]:
    """What is in the message's thread, as Slack would show it."""
    return [m for m in bot.slack.messages_in(channel) if m.get("thread_ts") == ts]


def post(bot: RunningBot, text: str, channel: str = "C0DEALS", *, retry_num: int = 0) -> str:
    ts = bot.next_ts()
    body = bot.workspace.event_callback(bot.workspace.message(channel, text, ts))
    assert bot.sender.event(body, retry_num=retry_num).status == 200
    return ts


def kinds_at(bot: RunningBot, *stamps: str) -> list[list[str]]:
    """The kinds of the notes stored for each message (`icp-bot notes export`): one each, or none."""
    notes = bot.notes()
    return [[str(n["kind"]) for n in notes if n["ts"] == ts] for ts in stamps]


def healthy(bot: RunningBot) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{bot.port}/healthz", timeout=30) as response:
        return response.status == 200 and json.loads(response.read())["ok"] is True


def ask_fit(bot: RunningBot, text: str = "Acme Corp") -> RecordedCall:
    """/icp-fit: acknowledged with 200, answered through the response_url."""
    start = len(bot.slack.calls)
    assert bot.sender.command(bot.workspace.slash_command(text, bot.slack.response_url())).status == 200
    (answer,) = bot.wait_for(lambda: bot.calls_since(start, "response_url"), what=f"the answer to {text}")
    return answer


# -- 429 storms -----------------------------------------------------------------------------------------


def test_a_429_storm_keeps_the_note_once_logs_the_failure_and_the_bot_serving(bot: RunningBot) -> None:
    retries = rate_limit_retries()
    storm = retries + 2  # longer than the client waits out; over during the next message
    mark = len(bot.log())
    bot.slack.rate_limit_next("chat.postMessage", times=storm, retry_after=1)
    first = post(bot, OUTCOME)
    second = post(bot, OTHER_OUTCOME)  # the same channel: handled after the first, in order

    # While the storm goes on, the bot answers its health check and people.
    bot.wait_for(lambda: attempts_to_confirm(bot, first), what="the first try to confirm")
    assert healthy(bot)
    assert ask_fit(bot).args["text"].startswith("*Acme Corp*")

    # The first gives up after the client's retries: told once in the log, with what it means.
    line = "could not confirm the note from #deals: ratelimited: Slack is rate-limiting the bot"
    bot.wait_for(lambda: line in bot.log()[mark:], timeout=60, what="the rate-limit log line")
    assert [c.status for c in attempts_to_confirm(bot, first)] == [429] * (retries + 1)
    # The second rides out the end of the storm and is confirmed.
    bot.wait_for(lambda: confirmed(bot, second), timeout=60, what="the second confirmation")
    assert [c.status for c in attempts_to_confirm(bot, second)] == [429] * (storm - retries - 1) + [200]
    assert "Traceback" not in bot.log()[mark:]

    # Slack retries the first event (it was acked, but a retry may come anyway): confirmed now.
    body = bot.workspace.event_callback(bot.workspace.message("C0DEALS", OUTCOME, first))
    assert bot.sender.event(body, retry_num=1).status == 200
    bot.wait_for(lambda: replies(bot, first), what="the first confirmation after the storm")
    assert len(replies(bot, first)) == len(replies(bot, second)) == 1
    assert kinds_at(bot, first, second) == [["loss"], ["renewal_loss"]]
    assert healthy(bot) and bot.process.poll() is None


# -- ok: false --------------------------------------------------------------------------------------------

REFUSALS = {
    "not_in_channel": "invite the bot to #deals (/invite @icp-bot)",
    "channel_not_found": "invite the bot to #deals, or check capture.channels in icp.yml",
    "invalid_blocks": "the message was refused by Slack (invalid blocks); please report it",
    "msg_too_long": "the message was too long for Slack",
    "fatal_error": "see https://api.slack.com/methods for the error code",
}


def test_refused_confirmations_keep_their_notes_and_log_one_clear_line_each(bot: RunningBot) -> None:
    mark = len(bot.log())
    for error in REFUSALS:  # queued: the next five confirmations are refused, one code each
        bot.slack.fail_next("chat.postMessage", error)
    stamps = {error: post(bot, OUTCOME) for error in REFUSALS}  # one channel: handled in this order
    after = post(bot, OUTCOME)
    bot.wait_for(lambda: replies(bot, after), what="the confirmation after the refusals")
    logged = bot.log()[mark:].splitlines()
    for error, ts in stamps.items():
        expected = f"could not confirm the note from #deals: {error}: {REFUSALS[error]}"
        assert [line for line in logged if error in line] == [line for line in logged if expected in line]
        assert len([line for line in logged if expected in line]) == 1, error
        assert [c.status for c in attempts_to_confirm(bot, ts)] == [200] and replies(bot, ts) == [], error
    assert "Traceback" not in bot.log()[mark:]
    notes = bot.notes()
    assert {error: [n["kind"] for n in notes if n["ts"] == ts] for error, ts in stamps.items()} == {
        error: ["loss"] for error in REFUSALS
    }


def test_a_refused_update_of_a_confirmation_keeps_the_edit_and_logs_it(bot: RunningBot) -> None:
    ts = post(bot, OUTCOME)
    bot.wait_for(lambda: replies(bot, ts), what="the confirmation")
    mark = len(bot.log())
    bot.slack.fail_next("chat.update", "invalid_blocks")
    edit = bot.workspace.message_changed("C0DEALS", ts, "Won Contoso back from Gong!", OUTCOME)
    assert bot.sender.event(bot.workspace.event_callback(edit)).status == 200
    expected = "could not update the confirmation in #deals: invalid_blocks"
    bot.wait_for(lambda: expected in bot.log()[mark:], what="the log line")
    assert "Traceback" not in bot.log()[mark:]
    assert kinds_at(bot, ts) == [["win"]]  # the edit is kept though Slack refused to show it


# -- a slow Web API ---------------------------------------------------------------------------------------


def test_a_slow_web_api_does_not_hold_up_acknowledgements(bot: RunningBot) -> None:
    """While the confirmation of one message hangs, Slack's requests are still answered at once:
    the health check, a slash command (ack and answer), and the next events (stored)."""
    bot.slack.delay_next("chat.postMessage", seconds=60)
    try:
        ts = post(bot, OUTCOME)
        bot.wait_for(lambda: bot.slack.held("chat.postMessage") == 1, what="the held confirmation")
        assert healthy(bot)
        assert ask_fit(bot, "Contoso Ltd").args["text"].startswith("*Contoso Ltd*")
        later = post(bot, OTHER_OUTCOME)  # acknowledged (200 in post) while the first still hangs
        assert bot.slack.held("chat.postMessage") == 1 and confirmed(bot, ts) == []  # still held
    finally:
        bot.slack.release_delays()
    bot.wait_for(lambda: replies(bot, ts) and replies(bot, later), what="both confirmations")
    assert len(replies(bot, ts)) == len(replies(bot, later)) == 1
    assert kinds_at(bot, ts, later) == [["loss"], ["renewal_loss"]]


def test_a_slow_call_in_one_channel_does_not_hold_up_capture_in_another(bot: RunningBot) -> None:
    bot.slack.delay_next("chat.postMessage", seconds=60)
    try:
        held = post(bot, OUTCOME)
        bot.wait_for(lambda: bot.slack.held("chat.postMessage") == 1, what="the held confirmation")
        elsewhere = post(bot, OTHER_OUTCOME, "C0CHURN")
        bot.wait_for(
            lambda: replies(bot, elsewhere, "C0CHURN"), timeout=5, what="capture in #churn meanwhile"
        )
        assert confirmed(bot, held) == []
    finally:
        bot.slack.release_delays()
        bot.wait_for(lambda: replies(bot, held), what="the held confirmation, released")


# -- a Web API that times out ---------------------------------------------------------------------------


def _thread(fuzz: FuzzBot, ts: str) -> list[dict[str, Any]]:
    return [m for m in fuzz.slack.messages_in("C0DEALS") if m.get("thread_ts") == ts]


def _time_passes(fuzz: FuzzBot, seconds: int) -> None:
    """Every claim (on inbox events, on confirmations) becomes `seconds` older, as if time passed."""
    with fuzz.engine.begin() as connection:
        for column in (InboxEvent.claimed_at, Note.confirm_claimed_at):
            table = column.class_.__table__
            rows = connection.execute(select(table.c.id, column).where(column.is_not(None))).all()
            for row_id, when in rows:
                older = when - timedelta(seconds=seconds)
                connection.execute(update(table).where(table.c.id == row_id).values({column.key: older}))


def _confirmation_ts(fuzz: FuzzBot, ts: str) -> str | None:
    with fuzz.engine.connect() as connection:
        found = connection.execute(text("SELECT confirmation_ts FROM notes WHERE ts = :ts"), {"ts": ts})
        return found.scalar_one()


@pytest.mark.parametrize("slack_took_it", [True, False])
def test_a_confirmation_that_timed_out_is_posted_exactly_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, slack_took_it: bool
) -> None:
    """chat.postMessage times out: Slack may have taken the message or not. The note is kept, the
    timeout logged, and the event tried again once its claims are stale: it then looks in the
    thread, adopts the confirmation Slack did take, or posts the one it did not."""
    with fuzz_bot_on("sqlite", tmp_path, client_timeout=1) as fuzz:
        ts = fuzz.next_ts()
        body = fuzz.workspace.event_callback(fuzz.workspace.message("C0DEALS", OUTCOME, ts))
        fuzz.slack.delay_next("chat.postMessage", seconds=3)
        with caplog.at_level(logging.WARNING):
            status, _ = fuzz.signed(Request.json(body))  # acked, then processed in full
        assert status == 200
        timeouts = [r for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], TimeoutError)]
        assert timeouts, "the timeout was not logged"
        assert fuzz.row_counts()["notes"] == 1
        fuzz.slack.release_delays()  # Slack answers the first call at last (too late for the client)
        wait_until(lambda: fuzz.slack.held("chat.postMessage") == 0)
        wait_until(lambda: len(_thread(fuzz, ts)) == 1)
        if not slack_took_it:  # the message never made it into the channel
            with fuzz.slack._lock:
                fuzz.slack.state.messages["C0DEALS"].clear()
        time.sleep(0.5)  # nothing else is posted meanwhile (a negative check)
        assert len(_thread(fuzz, ts)) == (1 if slack_took_it else 0)
        assert _confirmation_ts(fuzz, ts) is None

        _time_passes(fuzz, 31)
        fuzz.bot.inbox.drain()
        thread = _thread(fuzz, ts)
        assert len(thread) == 1, [m["text"] for m in thread]
        assert _confirmation_ts(fuzz, ts) == thread[0]["ts"]
        assert fuzz.slack.calls_to("conversations.replies"), "the thread was not looked at first"
        assert len(fuzz.slack.calls_to("chat.postMessage")) == (1 if slack_took_it else 2)
        assert fuzz.bot.inbox.counts().get("pending", 0) == 0


def wait_until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
