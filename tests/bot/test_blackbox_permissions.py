"""Who may change a captured note, black-box: `icp-bot run` in HTTP and Socket Mode with signed
payloads. The harness config names U0LEAD and the user group S0ICPADMINS as ICP admins."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.bot.blackbox import RunningBot

DEALS = "C0DEALS"


@pytest.fixture(autouse=True)
def _admin_group(running_bot: RunningBot) -> None:
    """Dana is in the ICP admins' user group (before any lookup: failures are cached a minute)."""
    running_bot.slack.set_usergroup("S0ICPADMINS", ["U0DANA"])


def _captured(bot: RunningBot, text: str) -> tuple[str, str, str]:
    """Post an outcome as U0MAYA; (message ts, note id, confirmation ts)."""
    start = len(bot.slack.calls)
    ts = bot.next_ts()
    bot.sender.event(bot.workspace.event_callback(bot.workspace.message(DEALS, text, ts)))

    def confirmation() -> dict[str, Any] | None:
        calls = bot.calls_since(start, "chat.postMessage")
        return next((c.args for c in calls if c.args.get("thread_ts") == ts), None)

    posted = bot.wait_for(confirmation, what=f"the confirmation of {ts}")
    note_id = next(e["value"] for b in posted["blocks"] if b["type"] == "actions" for e in b["elements"])
    confirmation_ts = bot.wait_for(
        lambda: next((m["ts"] for m in bot.slack.messages_in(DEALS) if m.get("thread_ts") == ts), None)
    )
    return ts, note_id, confirmation_ts


def _click(bot: RunningBot, action: str, note_id: str, message_ts: str, user: str) -> None:
    url = bot.slack.response_url()
    bot.sender.interactive(
        bot.workspace.block_actions(action, note_id, response_url=url, message_ts=message_ts, user=user)
    )


def test_someone_else_cannot_change_or_retract_a_note_and_is_told_privately(running_bot: RunningBot) -> None:
    bot = running_bot
    ts, note_id, message_ts = _captured(bot, "Lost Contoso to Clari on budget")
    for action in ("note_change", "note_not_outcome"):
        start = len(bot.slack.calls)
        _click(bot, action, note_id, message_ts, user="U0RAJ")
        (told,) = bot.wait_for(
            lambda start=start: bot.calls_since(start, "response_url"), what=f"the refusal of {action}"
        )
        assert told.args["response_type"] == "ephemeral" and told.args["replace_original"] is False
        assert told.args["text"] == "Only <@U0MAYA> or an ICP admin can change this note."
        bot.settle(0.3)
        assert bot.calls_since(start, "views.open") == [] and bot.calls_since(start, "chat.update") == []
    note = bot.note_for(ts)
    assert note is not None and (note["status"], note["kind"], note["corrected_by"]) == (
        "active",
        "loss",
        None,
    )


def test_a_member_of_the_admin_user_group_may_change_anyones_note(running_bot: RunningBot) -> None:
    bot = running_bot
    _, note_id, message_ts = _captured(bot, "Lost Contoso to Gong on price")
    start = len(bot.slack.calls)
    _click(bot, "note_change", note_id, message_ts, user="U0DANA")
    (opened,) = bot.wait_for(lambda: bot.calls_since(start, "views.open"), what="the Change form")
    assert opened.args["view"]["callback_id"] == "note_correct"
    lookups = bot.slack.calls_to("usergroups.users.list")
    assert lookups and lookups[-1].args["usergroup"] == "S0ICPADMINS"


def test_a_submission_is_checked_again_and_refused_for_someone_else(running_bot: RunningBot) -> None:
    bot = running_bot
    ts, note_id, message_ts = _captured(bot, "Lost Contoso on price, they went with Gong")
    start = len(bot.slack.calls)
    _click(bot, "note_change", note_id, message_ts, user="U0MAYA")  # the author opens the form
    (opened,) = bot.wait_for(lambda: bot.calls_since(start, "views.open"))
    values: dict[str, dict[str, Any]] = {
        "kind": {"kind": {"type": "static_select", "selected_option": {"value": "win"}}},
    }
    # ...and someone else's client submits it (a replayed or forwarded view).
    delivery = bot.sender.interactive(
        bot.workspace.view_submission(opened.args["view"], values, user="U0RAJ")
    )
    body = delivery.ack.get("payload", {}) if delivery.ack is not None else json.loads(delivery.body)
    assert body["response_action"] == "errors"
    assert body["errors"]["kind"].startswith("Only the person who posted this message or an ICP admin")
    note = bot.note_for(ts)
    assert note is not None and (note["kind"], note["corrected_by"]) == ("loss", None)
