"""capture.confirm: reaction and ephemeral, end to end (thread is covered by the flow tests)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.bot.blackbox import RunningBot

DEALS = "C0DEALS"


@pytest.fixture(scope="module", params=["reaction", "ephemeral"])
def confirming_bot(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningBot, str]]:
    with RunningBot.start(tmp_path_factory.mktemp(request.param), mode="http", confirm=request.param) as bot:
        yield bot, request.param


def test_a_captured_outcome_is_confirmed_as_the_config_says(confirming_bot: tuple[RunningBot, str]) -> None:
    bot, mode = confirming_bot
    start = len(bot.slack.calls)
    ts = bot.next_ts()
    bot.sender.event(
        bot.workspace.event_callback(bot.workspace.message(DEALS, "Lost Contoso to Gong on price", ts))
    )
    if mode == "reaction":
        (call,) = bot.wait_for(lambda: bot.calls_since(start, "reactions.add"))
        assert call.args == {"channel": DEALS, "timestamp": ts, "name": "white_check_mark"}
    else:
        (call,) = bot.wait_for(lambda: bot.calls_since(start, "chat.postEphemeral"))
        assert (call.args["channel"], call.args["user"]) == (DEALS, "U0MAYA")
        assert call.args["text"].startswith("Logged: *Loss · Contoso Ltd")
        assert [e["action_id"] for e in call.args["blocks"][-1]["elements"]] == [
            "note_change",
            "note_not_outcome",
        ]
    assert bot.calls_since(start, "chat.postMessage") == []
    note = bot.wait_for(lambda: bot.note_for(ts))
    assert note["kind"] == "loss"

    # An edit into chatter retracts the note; a reaction is taken back, an ephemeral cannot be.
    start = len(bot.slack.calls)
    edit = bot.workspace.message_changed(DEALS, ts, "nvm, wrong channel", "Lost Contoso to Gong on price")
    bot.sender.event(bot.workspace.event_callback(edit))
    bot.wait_for(lambda: (n := bot.note_for(ts)) is not None and n["status"] == "retracted")
    bot.settle(0.3)
    if mode == "reaction":
        (removed,) = bot.calls_since(start, "reactions.remove")
        assert removed.args == {"channel": DEALS, "timestamp": ts, "name": "white_check_mark"}
    assert bot.calls_since(start, "chat.postMessage") == [] and bot.calls_since(start, "chat.delete") == []
