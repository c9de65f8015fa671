"""The Slack app end to end, black-box: `icp-bot run` as a subprocess in HTTP and Socket Mode,
driven with Slack's exact payloads, checked by the Web API calls the stand-in recorded and by
`icp-bot notes export`."""

from __future__ import annotations

import json
from typing import Any

from tests.bot.blackbox import RunningBot

DEALS, CHURN = "C0DEALS", "C0CHURN"


def _texts(call_args: dict[str, Any]) -> str:
    """The fallback text and every block text of a message, joined."""
    parts = [str(call_args.get("text") or "")]

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "text" and isinstance(value, str):
                    parts.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(call_args.get("blocks") or [])
    return "\n".join(parts)


def _action_ids(call_args: dict[str, Any]) -> list[str]:
    return [
        str(e.get("action_id"))
        for b in call_args.get("blocks") or []
        if b.get("type") == "actions"
        for e in b.get("elements", [])
    ]


def _post(bot: RunningBot, text: str, *, channel: str = DEALS, **extra: Any) -> str:
    ts = bot.next_ts()
    bot.sender.event(bot.workspace.event_callback(bot.workspace.message(channel, text, ts, **extra)))
    return ts


def _confirmation_for(bot: RunningBot, ts: str, start: int) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        for call in bot.calls_since(start, "chat.postMessage"):
            if call.args.get("thread_ts") == ts and call.status == 200:
                return call.args
        return None

    return bot.wait_for(find, what=f"the confirmation of {ts}")


# ---------------------------------------------------------------------------------------------
# /icp-fit


def test_icp_fit_answers_privately_with_score_tier_criteria_and_a_share_button(
    running_bot: RunningBot,
) -> None:
    bot = running_bot
    start = len(bot.slack.calls)
    url = bot.slack.response_url()
    delivery = bot.sender.command(bot.workspace.slash_command("acmecorp.com", url))
    assert delivery.status == 200
    (answer,) = bot.wait_for(lambda: bot.calls_since(start, "response_url"), what="the fit answer")
    assert answer.args["response_type"] == "ephemeral"
    text = _texts(answer.args)
    assert "*Acme Corp* — *Tier A*, score 100/100" in text
    assert "_Matched “acmecorp.com” by domain._" in text
    assert "✓ *Industry* — industry Software" in text and "ICP 2026-Q4" in text
    assert _action_ids(answer.args) == ["fit_share"]
    # Nothing else was called: the answer went through the response_url only.
    assert {c.method for c in bot.calls_since(start)} == {"response_url"}


def test_share_posts_the_answer_in_the_channel_and_removes_the_private_copy(running_bot: RunningBot) -> None:
    bot = running_bot
    start = len(bot.slack.calls)
    bot.sender.command(bot.workspace.slash_command("Fabrikam", bot.slack.response_url()))
    (answer,) = bot.wait_for(lambda: bot.calls_since(start, "response_url"))
    (share,) = [e for b in answer.args["blocks"] if b["type"] == "actions" for e in b["elements"]]
    click_url = bot.slack.response_url()
    start = len(bot.slack.calls)
    bot.sender.interactive(
        bot.workspace.block_actions("fit_share", share["value"], response_url=click_url, ephemeral=True)
    )
    shared, deleted = bot.wait_for(
        lambda: bot.calls_since(start, "response_url")[1:] and bot.calls_since(start)
    )
    assert shared.args["response_type"] == "in_channel" and shared.args["replace_original"] is False
    assert "*Fabrikam Systems*" in _texts(shared.args) and "shared by <@U0MAYA>" in _texts(shared.args)
    assert _action_ids(shared.args) == []  # the shared copy has no Share button
    assert deleted.args["delete_original"] is True


def test_unsure_names_get_suggestion_buttons_and_a_pick_answers_for_that_account(
    running_bot: RunningBot,
) -> None:
    bot = running_bot
    start = len(bot.slack.calls)
    bot.sender.command(bot.workspace.slash_command("Contoso Globl", bot.slack.response_url()))
    (answer,) = bot.wait_for(lambda: bot.calls_since(start, "response_url"))
    text = _texts(answer.args)
    buttons = [e for b in answer.args["blocks"] if b["type"] == "actions" for e in b["elements"]]
    if "Did you mean" in text:
        assert buttons and all(b["action_id"].startswith("fit_pick_") for b in buttons)
        start = len(bot.slack.calls)
        bot.sender.interactive(
            bot.workspace.block_actions(
                buttons[0]["action_id"], buttons[0]["value"], response_url=bot.slack.response_url()
            )
        )
        (picked,) = bot.wait_for(lambda: bot.calls_since(start, "response_url"))
        assert picked.args["replace_original"] is True and "score" in _texts(picked.args)
    else:  # a confident fuzzy match answers at once
        assert "_Matched “Contoso Globl” by fuzzy._" in text

    start = len(bot.slack.calls)
    bot.sender.command(bot.workspace.slash_command("Zzyzx Qwerty Holdings", bot.slack.response_url()))
    (unknown,) = bot.wait_for(lambda: bot.calls_since(start, "response_url"))
    assert "I couldn't find an account called “Zzyzx Qwerty Holdings”" in _texts(unknown.args)
    assert "/icp-fit Newco industry=Software employees=300" in _texts(unknown.args)


def test_empty_icp_fit_shows_usage_in_the_acknowledgement(running_bot: RunningBot) -> None:
    bot = running_bot
    start = len(bot.slack.calls)
    delivery = bot.sender.command(bot.workspace.slash_command("   ", bot.slack.response_url()))
    body = delivery.ack.get("payload", {}) if delivery.ack is not None else json.loads(delivery.body)
    assert body["response_type"] == "ephemeral" and "/icp-fit Acme Corp" in body["text"]
    bot.settle(0.3)
    assert bot.calls_since(start, "response_url") == []


def test_an_adhoc_prospect_is_scored_from_its_fields(running_bot: RunningBot) -> None:
    bot = running_bot
    start = len(bot.slack.calls)
    query = "Newco industry=Software employees=300 country=Finland annual_revenue=25000000"
    bot.sender.command(bot.workspace.slash_command(query, bot.slack.response_url()))
    (answer,) = bot.wait_for(lambda: bot.calls_since(start, "response_url"))
    assert "*Newco* — *Tier A*, score 100/100" in _texts(answer.args)
    assert "_Ad-hoc check from the fields you gave._" in _texts(answer.args)


# ---------------------------------------------------------------------------------------------
# Capture


def test_an_outcome_is_captured_confirmed_in_thread_and_exported(running_bot: RunningBot) -> None:
    bot = running_bot
    start = len(bot.slack.calls)
    ts = _post(bot, "Lost Contoso to Gong on price :disappointed: $48k ARR")
    confirmation = _confirmation_for(bot, ts, start)
    assert confirmation["channel"] == DEALS
    assert confirmation["text"].startswith("Logged: *Loss · Contoso Ltd · Tier ")
    assert "price · lost to Gong · $48k ARR*" in confirmation["text"]
    assert _action_ids(confirmation) == ["note_change", "note_not_outcome"]
    note = bot.wait_for(lambda: bot.note_for(ts))
    assert {k: note[k] for k in ("kind", "account", "competitor", "reasons", "status", "source", "user")} == {
        "kind": "loss",
        "account": "Contoso Ltd",
        "competitor": "Gong",
        "reasons": ["price"],
        "status": "active",
        "source": "message",
        "user": "U0MAYA",
    }
    assert note["tier"] in {"A", "B", "C", "D"} and 0 < note["confidence"] <= 1
    assert note["permalink"] == f"https://standin.slack.test/archives/{DEALS}/p{ts.replace('.', '')}"
    # The confirmation is the only call the capture made (the #churn name was looked up once).
    methods = [c.method for c in bot.calls_since(start) if c.method != "conversations.list"]
    assert methods == ["chat.postMessage"]


def test_the_same_message_four_times_and_its_mention_twin_leave_one_note(running_bot: RunningBot) -> None:
    bot = running_bot
    start = len(bot.slack.calls)
    ts = bot.next_ts()
    text = "<@U0BOT> closed won Northwind Traders today, 2 year deal :tada:"
    message = bot.workspace.message(DEALS, text, ts)
    mention = bot.workspace.app_mention(DEALS, text, ts)
    body = bot.workspace.event_callback(message)
    deliveries = [bot.sender.event(body)]
    deliveries += [bot.sender.event(body, retry_num=n) for n in (1, 2, 3)]
    deliveries += [bot.sender.event(bot.workspace.event_callback(mention))]
    assert [d.status for d in deliveries] == [200] * 5
    _confirmation_for(bot, ts, start)
    bot.settle()
    notes = [n for n in bot.notes() if n["ts"] == ts]
    assert len(notes) == 1 and notes[0]["kind"] == "win" and notes[0]["account"] == "Northwind Traders"
    confirmations = [c for c in bot.calls_since(start, "chat.postMessage") if c.args.get("thread_ts") == ts]
    assert len(confirmations) == 1


def test_chatter_questions_and_other_channels_are_ignored_silently(running_bot: RunningBot) -> None:
    bot = running_bot
    start = len(bot.slack.calls)
    quiet = [
        _post(bot, "pipeline review at 3, bring your top 5"),
        _post(bot, "did we lose Globex? heard rumours"),
        _post(bot, "Lost Contoso to Gong on price", channel="C0RANDOM"),  # not a capture channel
    ]
    bot.settle()
    assert bot.calls_since(start, "chat.postMessage") == []
    exported = {n["ts"] for n in bot.notes()}
    assert not exported & set(quiet)


def test_channels_given_by_name_are_captured(running_bot: RunningBot) -> None:
    bot = running_bot
    start = len(bot.slack.calls)
    ts = _post(
        bot, "Tailspin Toys did not renew, churned to Gainsight. Adoption never took off", channel=CHURN
    )
    confirmation = _confirmation_for(bot, ts, start)
    assert confirmation["channel"] == CHURN and "Renewal loss · Tailspin Toys" in confirmation["text"]


def test_thread_replies_are_captured_only_when_they_are_outcomes(running_bot: RunningBot) -> None:
    bot = running_bot
    start = len(bot.slack.calls)
    parent = _post(bot, "Lost Contoso to Gong on price")
    _confirmation_for(bot, parent, start)
    start = len(bot.slack.calls)
    congrats = _post(bot, "ugh, sorry :( next time", thread_ts=parent)
    outcome = _post(
        bot, "fwiw we also lost Fabrikam's renewal last week, they moved to Totango", thread_ts=parent
    )
    confirmation = _confirmation_for(bot, parent, start)  # the reply's confirmation, in the same thread
    assert "Renewal loss · Fabrikam Systems" in confirmation["text"]
    bot.settle()
    assert bot.note_for(congrats) is None
    note = bot.note_for(outcome)
    assert note is not None and note["thread_ts"] == parent
    assert note["permalink"].endswith(f"?thread_ts={parent}&cid={DEALS}")


def test_a_thread_broadcast_is_captured(running_bot: RunningBot) -> None:
    bot = running_bot
    parent = _post(bot, "Vandelay renewal call today")
    start = len(bot.slack.calls)
    ts = bot.next_ts()
    event = bot.workspace.thread_broadcast(
        DEALS, "Update: we won Vandelay Industries back, signed 2 yrs", ts, parent
    )
    bot.sender.event(bot.workspace.event_callback(event))
    bot.wait_for(lambda: bot.calls_since(start, "chat.postMessage"))
    note = bot.wait_for(lambda: bot.note_for(ts))
    assert note["kind"] is not None and note["thread_ts"] == parent


def test_bots_are_ignored_unless_the_config_names_them(running_bot: RunningBot) -> None:
    bot = running_bot
    start = len(bot.slack.calls)
    crm_ts, other_ts = bot.next_ts(), bot.next_ts()
    crm = bot.workspace.bot_message(
        DEALS, "Opportunity Closed Won: Northwind Traders — $85,000", crm_ts, name="Salesforce"
    )
    other = bot.workspace.bot_message(
        DEALS, "Lost Contoso to Gong on price", other_ts, name="Standup Bot", bot_id="B0STANDUP"
    )
    bot.sender.event(bot.workspace.event_callback(crm))
    bot.sender.event(bot.workspace.event_callback(other))
    _confirmation_for(bot, crm_ts, start)
    bot.settle()
    assert bot.note_for(crm_ts) is not None and bot.note_for(other_ts) is None
    assert not [c for c in bot.calls_since(start, "chat.postMessage") if c.args.get("thread_ts") == other_ts]


# ---------------------------------------------------------------------------------------------
# Edits, deletes and corrections


def test_an_edit_turns_a_loss_into_a_win_and_a_delete_retracts_it(running_bot: RunningBot) -> None:
    bot = running_bot
    start = len(bot.slack.calls)
    ts = _post(bot, "Lost Contoso on price")
    confirmation = _confirmation_for(bot, ts, start)
    confirmation_ts = bot.wait_for(
        lambda: next((m["ts"] for m in bot.slack.messages_in(DEALS) if m.get("thread_ts") == ts), None)
    )
    assert "Loss · Contoso Ltd" in confirmation["text"]

    start = len(bot.slack.calls)
    changed = bot.workspace.message_changed(DEALS, ts, "Won Contoso", "Lost Contoso on price")
    assert bot.sender.event(bot.workspace.event_callback(changed)).status == 200
    (update,) = bot.wait_for(lambda: bot.calls_since(start, "chat.update"))
    assert update.args["ts"] == confirmation_ts and "Win · Contoso Ltd" in update.args["text"]
    note = bot.note_for(ts)
    assert note is not None and (note["kind"], note["reasons"], note["status"]) == ("win", [], "active")
    assert note["text"] == "Won Contoso"

    start = len(bot.slack.calls)
    deleted = bot.workspace.message_deleted(DEALS, ts, "Won Contoso")
    assert bot.sender.event(bot.workspace.event_callback(deleted)).status == 200
    (removal,) = bot.wait_for(lambda: bot.calls_since(start, "chat.delete"))
    assert removal.args == {"channel": DEALS, "ts": confirmation_ts}
    note = bot.note_for(ts)
    assert note is not None and (note["status"], note["kind"]) == ("retracted", "win")
    assert note["retracted_reason"] == "deleted"


def test_an_edit_that_only_unfurls_changes_nothing(running_bot: RunningBot) -> None:
    bot = running_bot
    start = len(bot.slack.calls)
    ts = _post(bot, "Lost Contoso to Clari")
    _confirmation_for(bot, ts, start)
    start = len(bot.slack.calls)
    same = bot.workspace.message_changed(DEALS, ts, "Lost Contoso to Clari", "Lost Contoso to Clari")
    bot.sender.event(bot.workspace.event_callback(same))
    bot.settle()
    assert [c.method for c in bot.calls_since(start)] == []


def test_change_opens_a_prefilled_modal_and_the_correction_sticks(running_bot: RunningBot) -> None:
    bot = running_bot
    start = len(bot.slack.calls)
    ts = _post(bot, "Lost Contoso on price")
    confirmation = _confirmation_for(bot, ts, start)
    note_id = next(
        e["value"] for b in confirmation["blocks"] if b["type"] == "actions" for e in b["elements"]
    )
    message_ts = bot.wait_for(
        lambda: next((m["ts"] for m in bot.slack.messages_in(DEALS) if m.get("thread_ts") == ts), None)
    )
    start = len(bot.slack.calls)
    click = bot.workspace.block_actions(
        "note_change", note_id, response_url=bot.slack.response_url(), message_ts=message_ts, user="U0LEAD"
    )
    bot.sender.interactive(click)
    (opened,) = bot.wait_for(lambda: bot.calls_since(start, "views.open"))
    view = opened.args["view"]
    assert view["callback_id"] == "note_correct"
    kind_block = next(b for b in view["blocks"] if b.get("block_id") == "kind")
    assert kind_block["element"]["initial_option"]["value"] == "loss"
    account_block = next(b for b in view["blocks"] if b.get("block_id") == "account")
    assert account_block["element"]["initial_value"] == "Contoso Ltd"

    values: dict[str, dict[str, Any]] = {
        "kind": {"kind": {"type": "static_select", "selected_option": {"value": "renewal_loss"}}},
        "account": {"account": {"type": "plain_text_input", "value": "fabrikam.com"}},
        "reasons": {"reasons": {"type": "multi_static_select", "selected_options": [{"value": "support"}]}},
        "competitor": {"competitor": {"type": "plain_text_input", "value": "Totango"}},
    }
    start = len(bot.slack.calls)
    submitted = bot.sender.interactive(bot.workspace.view_submission(view, values, user="U0LEAD"))
    assert submitted.status == 200
    (update,) = bot.wait_for(lambda: bot.calls_since(start, "chat.update"))
    assert update.args["ts"] == message_ts
    assert (
        "Renewal loss · Fabrikam Systems" in update.args["text"]
        and "corrected by <@U0LEAD>" in update.args["text"]
    )
    note = bot.note_for(ts)
    assert note is not None
    assert (note["kind"], note["account"], note["competitor"], note["reasons"], note["corrected_by"]) == (
        "renewal_loss",
        "Fabrikam Systems",
        "Totango",
        ["support"],
        "U0LEAD",
    )
    # A later edit of the message never re-tags what a person labelled.
    bot.sender.event(
        bot.workspace.event_callback(bot.workspace.message_changed(DEALS, ts, "Won Contoso", "x"))
    )
    bot.settle()
    note = bot.note_for(ts)
    assert note is not None and note["kind"] == "renewal_loss" and note["text"] == "Won Contoso"


def test_a_submission_without_a_kind_is_refused_in_the_modal(running_bot: RunningBot) -> None:
    bot = running_bot
    start = len(bot.slack.calls)
    ts = _post(bot, "Lost Contoso on budget")
    confirmation = _confirmation_for(bot, ts, start)
    note_id = next(
        e["value"] for b in confirmation["blocks"] if b["type"] == "actions" for e in b["elements"]
    )
    view = {
        "type": "modal",
        "callback_id": "note_correct",
        "private_metadata": json.dumps({"note": int(note_id)}),
    }
    delivery = bot.sender.interactive(
        bot.workspace.view_submission(view, {"kind": {"kind": {"selected_option": None}}})
    )
    body = delivery.ack.get("payload", {}) if delivery.ack is not None else json.loads(delivery.body)
    assert body["response_action"] == "errors" and "kind" in body["errors"]
    note = bot.note_for(ts)
    assert note is not None and note["kind"] == "loss" and note["corrected_by"] is None


def test_not_an_outcome_retracts_the_note_and_strikes_the_confirmation(running_bot: RunningBot) -> None:
    bot = running_bot
    start = len(bot.slack.calls)
    # Any captured note will do: a person who says it reports no outcome has the last word.
    ts = _post(bot, "Signed off on the Contoso slides, we lost the old deck though")
    bot.settle()
    if bot.note_for(ts) is None:  # the tagger saw through it: a plain outcome, called not one
        ts = _post(bot, "Lost Contoso to Gong on price")
    confirmation = _confirmation_for(bot, ts, start)
    note_id = next(
        e["value"] for b in confirmation["blocks"] if b["type"] == "actions" for e in b["elements"]
    )
    start = len(bot.slack.calls)
    url = bot.slack.response_url()
    bot.sender.interactive(bot.workspace.block_actions("note_not_outcome", note_id, response_url=url))
    (replaced,) = bot.wait_for(lambda: bot.calls_since(start, "response_url"))
    assert replaced.args["replace_original"] is True
    assert (
        replaced.args["text"].startswith("~Logged: ")
        and "not an outcome, removed by <@U0MAYA>" in replaced.args["text"]
    )
    assert _action_ids(replaced.args) == []
    note = bot.note_for(ts)
    assert note is not None and (note["status"], note["retracted_reason"]) == ("retracted", "not_an_outcome")
