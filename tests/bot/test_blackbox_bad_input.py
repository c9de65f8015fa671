"""What bad input gets (issue 3), black-box: `icp-bot run` as a subprocess, driven over HTTP or
Socket Mode, judged by what the Slack stand-in recorded, the HTTP status or ack, `notes export`
and the bot's log.

Status codes the bot gives (HTTP mode):
- forged signature, missing signature, tampered body, stale timestamp: 401 (Bolt's verification);
- a body that is not a Slack request (not JSON under a JSON content type, not UTF-8, a JSON array,
  an `event` that is not an object, an interactive `payload` that is not a JSON object): 400;
- a well-signed JSON object Bolt cannot route (empty body, `event_callback` without `event`, an
  event without `type`, a form without `command`): 404 "unhandled request" (Bolt);
- a well-signed, well-shaped but odd event (no channel, ts or text; text not a string; unknown event
  types; message subtypes that are not captured; a 40,000-character message): 200;
- a command without text: 200 with the usage.
In Socket Mode every envelope is acknowledged, whatever its payload.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest

from bot.payloads import SlackSender, sign
from bot.standin import RecordedCall, SlackStandIn
from tests.bot.blackbox import ICP_BOT, SECRET, RunningBot, free_port, write_config

OUTCOME = "Lost Contoso to Gong on price"
ACTOR = "U0REP"  # the person who posts and clicks in the mention tests; U0MAYA is only ever mentioned
POSTING_METHODS = frozenset(
    {"chat.postMessage", "chat.postEphemeral", "chat.update", "response_url", "views.open", "views.update"}
)
PINGS = ("<!channel>", "<!here>", "<!everyone>", "<@U0MAYA>")
# The only markup the bot may write itself: permalinks into the workspace and the acting person.
BOT_MARKUP = re.compile(rf"<https://standin\.slack\.test/[^\s<>|]*\|[^<>|]*>|<@{ACTOR}>")
JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


# -- helpers ------------------------------------------------------------------------------------


def http_only(bot: RunningBot) -> None:
    if bot.mode == "socket":
        pytest.skip("HTTP mode only")


def socket_only(bot: RunningBot) -> None:
    if bot.mode != "socket":
        pytest.skip("Socket Mode only")


def texts(value: object) -> Iterator[str]:
    """Every string Slack would render: the `text` of messages, blocks, elements and views."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "text" and isinstance(item, str):
                yield item
            else:
                yield from texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from texts(item)


def posted(bot: RunningBot, start: int) -> list[RecordedCall]:
    return [c for c in bot.calls_since(start) if c.method in POSTING_METHODS]


def assert_never_pings(calls: list[RecordedCall], *, double_escapes_too: bool = True) -> None:
    assert calls, "the bot posted nothing to check"
    for call in calls:
        for text in texts(call.args):
            for ping in PINGS:
                assert ping not in text, f"{call.method} would ping: {text[:300]!r}"
            leftover = BOT_MARKUP.sub("", text)
            assert "<" not in leftover, f"{call.method} has a raw '<' Slack would parse: {text[:300]!r}"
            if double_escapes_too:
                assert not re.search(r"&amp;(amp|lt|gt);", text), (
                    f"{call.method} escaped twice: {text[:300]!r}"
                )


def assert_within_slack_limits(call: RecordedCall) -> None:
    text = call.args.get("text", "")
    assert isinstance(text, str) and len(text) <= 40_000, f"{call.method}: text of {len(text):,} characters"
    blocks = call.args.get("blocks") or []
    assert len(blocks) <= 50, f"{call.method}: {len(blocks)} blocks"
    for block in blocks:
        if block["type"] == "section":
            assert len(block.get("text", {}).get("text", "")) <= 3000, f"{call.method}: section over 3000"
            fields = block.get("fields") or []
            assert len(fields) <= 10 and all(len(f["text"]) <= 2000 for f in fields)
        elif block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
        elif block["type"] == "context":
            assert len(block["elements"]) <= 10


def marked_outcome(bot: RunningBot) -> tuple[str, str]:
    """A fresh marker and an outcome that carries it (to find whatever was stored from it)."""
    marker = f"ref{bot.next_ts().replace('.', '')}"
    return marker, f"{OUTCOME} ({marker})"


def stored_from(notes: list[dict[str, Any]], marker: str, stamps: set[str]) -> list[str]:
    """The texts of notes stored from a test's messages: carrying its marker, or at one of its ts."""
    return [str(n["text"])[:100] for n in notes if marker in str(n["text"]) or n["ts"] in stamps]


def confirmation_for(bot: RunningBot, ts: str) -> list[RecordedCall]:
    """The bot's tries to confirm the message at `ts` that got through (HTTP 200, `ok` or not)."""
    return [
        c for c in bot.slack.calls_to("chat.postMessage") if c.status == 200 and c.args.get("thread_ts") == ts
    ]


def capture(bot: RunningBot, text: str, *, user: str = "U0MAYA") -> tuple[str, RecordedCall]:
    """Post an outcome in #deals and wait for its confirmation; returns its ts and the confirmation."""
    ts = bot.next_ts()
    delivery = bot.sender.event(
        bot.workspace.event_callback(bot.workspace.message("C0DEALS", text, ts, user=user))
    )
    assert delivery.status == 200
    (confirmation,) = bot.wait_for(lambda: confirmation_for(bot, ts), what=f"the confirmation of {ts}")
    return ts, confirmation


def note_id(confirmation: RecordedCall) -> str:
    """The note id a confirmation's Change button carries."""
    buttons = [e for b in confirmation.args["blocks"] if b["type"] == "actions" for e in b["elements"]]
    return str(next(e["value"] for e in buttons if e["action_id"] == "note_change"))


def fit_answer(bot: RunningBot, text: str, *, user: str = ACTOR) -> RecordedCall:
    """`/icp-fit text` and its answer through the response_url."""
    url = bot.slack.response_url()
    start = len(bot.slack.calls)
    delivery = bot.sender.command(bot.workspace.slash_command(text, url, user=user))
    assert delivery.status == 200
    calls = bot.wait_for(
        lambda: bot.calls_since(start, "response_url"), what=f"the answer to /icp-fit {text}"
    )
    return calls[0]


def assert_fit_still_works(bot: RunningBot) -> None:
    answer = fit_answer(bot, "Acme Corp")
    assert answer.args["text"].startswith("*Acme Corp*")
    assert bot.process.poll() is None, "icp-bot run exited"


# -- 1. signatures (HTTP) -------------------------------------------------------------------------


def test_forged_missing_and_stale_signatures_get_401_and_store_nothing(running_bot: RunningBot) -> None:
    bot = running_bot
    http_only(bot)
    assert bot.sender.url is not None
    ts = bot.next_ts()
    body = json.dumps(bot.workspace.event_callback(bot.workspace.message("C0DEALS", OUTCOME, ts))).encode()
    tampered = body.replace(b"Gong", b"Gonk")
    start = len(bot.slack.calls)
    statuses = {
        "wrong secret": SlackSender(url=bot.sender.url, secret="0" * 32).post(body, JSON).status,
        "no signature": bot.sender.post(body, JSON, signed=False).status,
        "tampered body": bot.sender.post(tampered, {**JSON, **sign(body, SECRET)}, signed=False).status,
        "stale (6 min)": bot.sender.post(body, JSON, timestamp=int(time.time()) - 6 * 60).status,
    }
    assert statuses == dict.fromkeys(statuses, 401)
    bot.settle()
    assert bot.calls_since(start, "chat.postMessage") == []
    assert bot.note_for(ts) is None
    # The same body, correctly signed, is captured: the refusals above were about the signature alone.
    assert bot.sender.post(body, JSON).status == 200
    bot.wait_for(lambda: confirmation_for(bot, ts), what="the confirmation of the signed copy")
    assert [n["kind"] for n in bot.notes() if n["ts"] == ts] == ["loss"]


# -- 2. malformed bodies --------------------------------------------------------------------------


def test_bodies_that_are_not_slack_requests_get_4xx_and_the_bot_keeps_serving(
    running_bot: RunningBot,
) -> None:
    bot = running_bot
    http_only(bot)
    w = bot.workspace
    no_event = w.event_callback({})
    del no_event["event"]
    marker, text = marked_outcome(bot)
    outcome = w.message("C0DEALS", text, bot.next_ts())
    command = w.slash_command("Acme Corp", bot.slack.response_url())
    cases: dict[str, tuple[bytes, dict[str, str], int]] = {
        "not JSON, JSON content type": (b'{"type": "event_callback", "event": {', JSON, 400),
        "not UTF-8": (b'{"type": "\xff\xfe"}', JSON, 400),
        "a JSON array": (json.dumps([w.event_callback(outcome)]).encode(), JSON, 400),
        "event is a string": (
            json.dumps({**w.event_callback(outcome), "event": text}).encode(),
            JSON,
            400,
        ),
        "payload not JSON": (urlencode({"payload": "{not json"}).encode(), FORM, 400),
        "payload a JSON array": (urlencode({"payload": "[1, 2]"}).encode(), FORM, 400),
        "empty body": (b"", JSON, 404),
        "event_callback without event": (json.dumps(no_event).encode(), JSON, 404),
        "event without type": (json.dumps(w.event_callback({"text": text})).encode(), JSON, 404),
        "form without command": (
            urlencode({k: v for k, v in command.items() if k != "command"}).encode(),
            FORM,
            404,
        ),
    }
    mark, start = len(bot.log()), len(bot.slack.calls)
    statuses = {name: bot.sender.post(body, headers).status for name, (body, headers, _) in cases.items()}
    assert statuses == {name: expected for name, (_, _, expected) in cases.items()}
    bot.settle()
    assert [c.method for c in bot.calls_since(start) if c.method in POSTING_METHODS] == []
    assert stored_from(bot.notes(), marker, {outcome["ts"]}) == []
    assert "Traceback" not in bot.log()[mark:]
    assert_fit_still_works(bot)


def test_odd_but_well_signed_events_get_200_and_store_nothing(running_bot: RunningBot) -> None:
    bot = running_bot
    w = bot.workspace

    marker, text = marked_outcome(bot)
    stamps: set[str] = set()

    def outcome_without(*keys: str, **changes: Any) -> dict[str, Any]:
        event = {**w.message("C0DEALS", text, bot.next_ts()), **changes}
        stamps.add(event["ts"])
        for key in keys:
            del event[key]
        return event

    events = {
        "no channel": outcome_without("channel"),
        "no ts": outcome_without("ts", "event_ts"),
        "no text": outcome_without("text", "blocks"),
        "text is a list": outcome_without(text=[text]),
        "text is an object": outcome_without(text={"text": text}),
        "text is a number": outcome_without(text=40000),
        "channel is a list": outcome_without(channel=["C0DEALS"]),
    }
    mark, start = len(bot.log()), len(bot.slack.calls)
    statuses = {name: bot.sender.event(w.event_callback(event)).status for name, event in events.items()}
    assert statuses == dict.fromkeys(events, 200)
    bot.settle()
    assert [c.method for c in bot.calls_since(start) if c.method in POSTING_METHODS] == []
    # The bot still captures: a normal outcome afterwards is stored and confirmed.
    ts, _ = capture(bot, OUTCOME)
    notes = bot.notes()
    assert stored_from(notes, marker, stamps) == []
    assert [n["kind"] for n in notes if n["ts"] == ts] == ["loss"]
    assert "Traceback" not in bot.log()[mark:]


def test_command_without_text_gets_the_usage(running_bot: RunningBot) -> None:
    bot = running_bot
    fields = bot.workspace.slash_command("", bot.slack.response_url())
    del fields["text"]
    delivery = bot.sender.command(fields)
    assert delivery.status == 200
    answer = json.loads(delivery.body)
    if bot.mode == "socket":
        answer = answer["payload"]
    assert answer["text"].startswith("*How well does an account fit our ICP?*")


def test_socket_envelopes_with_odd_payloads_are_still_acknowledged(running_bot: RunningBot) -> None:
    bot = running_bot
    socket_only(bot)
    w = bot.workspace
    no_event = w.event_callback({})
    del no_event["event"]
    not_an_object: Any = "not an object"
    marker, text = marked_outcome(bot)
    envelopes: dict[str, tuple[str, Any]] = {
        "events_api: event is a string": ("events_api", {**w.event_callback({}), "event": text}),
        "events_api: no event": ("events_api", no_event),
        "events_api: empty": ("events_api", {}),
        "events_api: a string": ("events_api", not_an_object),
        "events_api: event without type": ("events_api", w.event_callback({"text": text})),
        "slash_commands: empty": ("slash_commands", {}),
        "slash_commands: no command": ("slash_commands", {"text": "Acme Corp"}),
        "slash_commands: unknown command": (
            "slash_commands",
            w.slash_command("Acme Corp", bot.slack.response_url(), command="/other"),
        ),
        "interactive: empty": ("interactive", {}),
        "interactive: a string": ("interactive", not_an_object),
        "interactive: unknown action": (
            "interactive",
            w.block_actions("no_such_action", "1", response_url=bot.slack.response_url()),
        ),
    }
    start = len(bot.slack.calls)
    sent = {name: bot.slack.push_envelope(kind, payload) for name, (kind, payload) in envelopes.items()}
    acks = {name: bot.slack.wait_for_ack(envelope_id, timeout=10) for name, envelope_id in sent.items()}
    assert {name: ack is not None for name, ack in acks.items()} == dict.fromkeys(envelopes, True)
    assert all(ack is not None and ack["envelope_id"] == sent[name] for name, ack in acks.items())
    assert bot.slack.ack_errors == []
    bot.settle()
    assert [c.method for c in bot.calls_since(start) if c.method in POSTING_METHODS] == []
    assert stored_from(bot.notes(), marker, set()) == []
    assert_fit_still_works(bot)


# -- 3. unknown event types and subtypes that are not captured ------------------------------------


def test_unknown_events_and_uncaptured_subtypes_are_acknowledged_and_ignored(running_bot: RunningBot) -> None:
    bot = running_bot
    w = bot.workspace
    ts, thread = bot.next_ts(), bot.next_ts()
    marker, text = marked_outcome(bot)
    base = {"type": "message", "channel": "C0DEALS", "channel_type": "channel", "ts": ts, "event_ts": ts}
    item = {"type": "message", "channel": "C0DEALS", "ts": ts}
    events: dict[str, dict[str, Any]] = {
        "reaction_added": {"type": "reaction_added", "user": "U0MAYA", "reaction": "thumbsup",
                           "item_user": ACTOR, "item": item, "event_ts": ts},
        "some_future_event": {"type": "some_future_event", "channel": "C0DEALS", "text": text,
                              "event_ts": ts},
        "app_home_opened": {"type": "app_home_opened", "user": "U0MAYA", "channel": "D0MAYA", "tab": "home"},
        "channel_join": {**base, "subtype": "channel_join", "user": ACTOR,
                         "text": f"<@{ACTOR}> has joined the channel. {text}"},
        "channel_topic": {**base, "subtype": "channel_topic", "user": ACTOR, "topic": text,
                          "text": f"set the channel topic: {text}"},
        "message_replied": {**base, "subtype": "message_replied", "hidden": True,
                            "message": {"type": "message", "user": ACTOR, "text": text, "ts": thread,
                                        "thread_ts": thread, "reply_count": 1, "latest_reply": ts}},
        "pinned_item": {**base, "subtype": "pinned_item", "user": ACTOR, "text": text},
    }  # fmt: skip
    start = len(bot.slack.calls)
    statuses = {name: bot.sender.event(w.event_callback(event)).status for name, event in events.items()}
    assert statuses == dict.fromkeys(events, 200)
    bot.settle()
    assert [c.method for c in bot.calls_since(start) if c.method in POSTING_METHODS] == []
    assert stored_from(bot.notes(), marker, {ts, thread}) == []


# -- 4. a 40,000-character message ------------------------------------------------------------------


def test_a_40000_character_outcome_is_stored_once_and_answered_within_slack_limits(
    running_bot: RunningBot,
) -> None:
    bot = running_bot
    filler = "The committee met again :sweat_smile: and *nothing* moved.\n\n"
    text = (OUTCOME + ". " + filler * 1000)[:40_000]
    assert len(text) == 40_000
    start = len(bot.slack.calls)
    ts, confirmation = capture(bot, text)
    assert confirmation.args["text"].startswith("Logged: *Loss · Contoso Ltd")
    # Slack's retry of the same big event changes nothing.
    retry = bot.sender.event(
        bot.workspace.event_callback(bot.workspace.message("C0DEALS", text, ts)), retry_num=1
    )
    assert retry.status == 200
    answer = fit_answer(bot, "Contoso Ltd")  # quotes the latest outcomes, this one among them
    assert "“Lost Contoso to Gong on price. The committee met again" in answer.args["text"]
    bot.settle()
    mine = [n for n in bot.notes() if n["ts"] == ts]
    assert len(mine) == 1 and len(mine[0]["text"]) == 40_000 and mine[0]["kind"] == "loss"
    assert len(confirmation_for(bot, ts)) == 1
    calls = posted(bot, start)
    assert calls
    for call in calls:
        assert_within_slack_limits(call)
    assert bot.process.poll() is None


# -- 5. mentions, markup and escapes ------------------------------------------------------------------


EVIL = (
    f"{OUTCOME} <!channel> <!here> <!everyone> <@U0MAYA> &lt;script&gt;alert(1)&lt;/script&gt; "
    "R&amp;D &amp; legal :fire: 🔥🎉 *bold* _x_ ~gone~ `code` <https://evil.example/x|click me> "
    "<#C0CHURN|churn>"
)


def test_mentions_markup_and_escapes_from_users_never_ping_or_break_formatting(
    running_bot: RunningBot,
) -> None:
    bot = running_bot
    w = bot.workspace
    start = len(bot.slack.calls)
    ts, confirmation = capture(bot, EVIL, user=ACTOR)
    # An account-name-like string with a special mention inside it.
    capture(bot, "Lost Contoso<!channel> Ltd<!here> to Gong<!everyone> on price", user=ACTOR)

    # /icp-fit with mentions in the name, and an ad-hoc prospect whose name and fields carry them.
    fit_answer(bot, "<!channel> Acme")
    adhoc = fit_answer(bot, "Evil<!here> industry=<!channel>")
    assert adhoc.args["text"].startswith("*Evil&lt;!here&gt;*")
    assert "&lt;!channel&gt;" in adhoc.args["text"]
    # Sharing that answer in the channel shows the same, escaped, to everyone.
    share = next(
        e
        for b in adhoc.args["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == "fit_share"
    )
    url = bot.slack.response_url()
    before_share = len(bot.slack.calls)
    assert (
        bot.sender.interactive(
            w.block_actions("fit_share", share["value"], response_url=url, user=ACTOR)
        ).status
        == 200
    )
    shared = bot.wait_for(
        lambda: [
            c
            for c in bot.calls_since(before_share, "response_url")
            if c.args.get("response_type") == "in_channel"
        ]
    )
    assert shared[0].args["text"].startswith("*Evil&lt;!here&gt;*")

    # The latest outcomes of Contoso quote the evil message (as plain text, escaped once).
    contoso = fit_answer(bot, "Contoso Ltd")
    assert "&lt;script&gt;" in contoso.args["text"]

    # An edit to more of the same (and a second reason) updates the confirmation.
    edited = EVIL.replace("on price", "on price and budget").replace(
        "<!here>", "<!here|here> <!subteam^S0SALES>"
    )
    before_edit = len(bot.slack.calls)
    change = w.message_changed("C0DEALS", ts, edited, EVIL, user=ACTOR)
    assert bot.sender.event(w.event_callback(change)).status == 200
    (update,) = bot.wait_for(
        lambda: bot.calls_since(before_edit, "chat.update"), what="the updated confirmation"
    )
    assert "budget" in update.args["text"]

    assert_never_pings(posted(bot, start))
    assert confirmation.args["text"].startswith("Logged: *Loss · Contoso Ltd")

    # The Change form quotes the message: it must not ping either (double escaping is tolerated there:
    # bot/blocks.py quotes the note's raw Slack text; see the report).
    before_form = len(bot.slack.calls)
    click = w.block_actions(
        "note_change", note_id(confirmation), response_url=bot.slack.response_url(), user=ACTOR
    )
    assert bot.sender.interactive(click).status == 200
    bot.wait_for(lambda: bot.calls_since(before_form, "views.open"), what="the Change form")
    assert_never_pings(posted(bot, before_form), double_escapes_too=False)


def test_slack_escaped_command_text_is_read_once_and_shown_escaped_once(running_bot: RunningBot) -> None:
    bot = running_bot
    # What Slack sends for "/icp-fit Litware & Sons Publishing" and "/icp-fit <script> Contoso":
    answer = fit_answer(bot, "Litware &amp; Sons Publishing")
    assert answer.args["text"].startswith("*Litware &amp; Sons Publishing*")
    assert "Matched" not in answer.args["text"]  # an exact match, not a fuzzy one on "&amp;"
    script = fit_answer(bot, "&lt;script&gt; Contoso")
    assert "“&lt;script&gt; Contoso”" in script.args["text"]
    assert_never_pings([answer, script])


# -- 6. Web API ok: false ---------------------------------------------------------------------------


def test_not_in_channel_is_logged_with_the_fix_and_a_retry_posts_the_confirmation(
    running_bot: RunningBot,
) -> None:
    bot = running_bot
    w = bot.workspace
    ts = bot.next_ts()
    body = w.event_callback(w.message("C0DEALS", OUTCOME, ts))
    mark = len(bot.log())
    bot.slack.fail_next("chat.postMessage", "not_in_channel")
    assert bot.sender.event(body).status == 200
    bot.wait_for(lambda: "not_in_channel: invite the bot to #deals" in bot.log()[mark:], what="the log line")
    (line,) = [ln for ln in bot.log()[mark:].splitlines() if "not_in_channel" in ln]
    assert "could not confirm" in line and "/invite @icp-bot" in line and "Traceback" not in bot.log()[mark:]

    def replies() -> list[dict[str, Any]]:
        return [m for m in bot.slack.messages_in("C0DEALS") if m.get("thread_ts") == ts]

    assert len(confirmation_for(bot, ts)) == 1 and replies() == []  # tried once, refused
    # Slack retries the event (the bot was invited meanwhile): the claim was released, so it confirms now.
    assert bot.sender.event(body, retry_num=1).status == 200
    bot.wait_for(replies, what="the confirmation after the retry")
    assert len(confirmation_for(bot, ts)) == 2 and len(replies()) == 1
    assert [n["kind"] for n in bot.notes() if n["ts"] == ts] == ["loss"]  # still one note
    assert bot.process.poll() is None


def test_channel_not_found_is_logged_with_the_fix(running_bot: RunningBot) -> None:
    bot = running_bot
    fix = "channel_not_found: invite the bot to #deals, or check capture.channels in icp.yml"
    mark = len(bot.log())
    bot.slack.fail_next("chat.postMessage", "channel_not_found")
    ts = bot.next_ts()
    event = bot.workspace.event_callback(bot.workspace.message("C0DEALS", OUTCOME, ts))
    assert bot.sender.event(event).status == 200
    bot.wait_for(lambda: fix in bot.log()[mark:], what="the log line")
    assert [c.args["thread_ts"] for c in bot.calls_since(0, "chat.postMessage")][-1] == ts  # the refused try
    assert "Traceback" not in bot.log()[mark:]
    assert_fit_still_works(bot)


def test_a_person_waiting_is_told_when_slack_refuses(running_bot: RunningBot) -> None:
    bot = running_bot
    ts, confirmation = capture(bot, OUTCOME)
    reply = next(m for m in bot.slack.messages_in("C0DEALS") if m.get("thread_ts") == ts)
    bot.slack.fail_next("views.open", "not_in_channel")
    url = bot.slack.response_url()
    start = len(bot.slack.calls)
    click = bot.workspace.block_actions(
        "note_change", note_id(confirmation), response_url=url, message_ts=reply["ts"]
    )
    delivery = bot.sender.interactive(click)
    assert delivery.status == 200  # acknowledged (Bolt loses the ack when a listener raises after it)
    told = bot.wait_for(lambda: bot.calls_since(start, "response_url"), what="the explanation")
    assert [c.status for c in bot.calls_since(start, "views.open")] == [200]
    (message,) = told
    assert message.args["response_type"] == "ephemeral" and message.args.get("replace_original") is False
    assert "invite the bot to #deals" in message.args["text"]
    assert "could not open the Change form: not_in_channel" in bot.log()
    assert bot.process.poll() is None


# -- 7. rate limits ------------------------------------------------------------------------------------


def test_a_rate_limited_confirmation_still_arrives(running_bot: RunningBot) -> None:
    bot = running_bot
    bot.slack.rate_limit_next("chat.postMessage", times=1, retry_after=1)
    ts, confirmation = capture(bot, OUTCOME)
    attempts = [c for c in bot.slack.calls_to("chat.postMessage") if c.args.get("thread_ts") == ts]
    assert [c.status for c in attempts] == [429, 200]
    assert attempts[1].at - attempts[0].at >= 0.9  # Retry-After was respected
    assert confirmation.args["text"].startswith("Logged: *Loss · Contoso Ltd")
    assert len([n for n in bot.notes() if n["ts"] == ts]) == 1


# -- 8. start-up refusals --------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    returncode: int
    stdout: str
    stderr: str
    secrets: tuple[str, ...]


REFUSALS = {  # case: (the variable the message must name, words it must contain)
    "missing SLACK_BOT_TOKEN": ("SLACK_BOT_TOKEN", "is not set"),
    "malformed SLACK_BOT_TOKEN": ("SLACK_BOT_TOKEN", "does not look like a token"),
    "HTTP without SLACK_SIGNING_SECRET": ("SLACK_SIGNING_SECRET", "is not set"),
    "--socket without SLACK_APP_TOKEN": ("SLACK_APP_TOKEN", "is not set"),
    "SLACK_API_URL on a closed port": ("SLACK_API_URL", "cannot reach"),
    "bot token refused (invalid_auth)": ("SLACK_BOT_TOKEN", "invalid_auth"),
    "app token refused (invalid_auth)": ("SLACK_APP_TOKEN", "invalid_auth"),
}


@pytest.fixture(scope="module")
def refusals(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Refusal]]:
    """Every refusal case started at once (`icp-bot run` with a crafted environment), then awaited."""
    with SlackStandIn() as slack:
        refused_bot, refused_app = "xoxb-refused-by-slack-73110", "xapp-1-A0STANDIN-refused-8812"
        good = {
            "SLACK_BOT_TOKEN": slack.token,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": slack.base_url,
        }
        without = {name: {k: v for k, v in good.items() if k != name} for name in good}
        cases: dict[str, tuple[dict[str, str], str]] = {
            "missing SLACK_BOT_TOKEN": (without["SLACK_BOT_TOKEN"], "--http"),
            "malformed SLACK_BOT_TOKEN": ({**good, "SLACK_BOT_TOKEN": "abc"}, "--http"),
            "HTTP without SLACK_SIGNING_SECRET": (without["SLACK_SIGNING_SECRET"], "--http"),
            "--socket without SLACK_APP_TOKEN": (good, "--socket"),
            "SLACK_API_URL on a closed port": (
                {**good, "SLACK_API_URL": f"http://127.0.0.1:{free_port()}/api/"},
                "--http",
            ),
            "bot token refused (invalid_auth)": ({**good, "SLACK_BOT_TOKEN": refused_bot}, "--http"),
            "app token refused (invalid_auth)": ({**good, "SLACK_APP_TOKEN": refused_app}, "--socket"),
        }
        assert set(cases) == set(REFUSALS)
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SLACK_", "ICP_BOT_", "DATABASE_URL", "PORT"))
        }
        running: dict[str, tuple[subprocess.Popen[str], tuple[str, ...]]] = {}
        for i, (name, (env, flag)) in enumerate(cases.items()):
            folder = tmp_path_factory.mktemp(f"refusal{i}")
            full = {**base, **env, "DATABASE_URL": f"sqlite:///{folder / 'bot.db'}",
                    "ICP_BOT_CONFIG": str(write_config(folder))}  # fmt: skip
            command = [*ICP_BOT, "run", flag, "--port", str(free_port()), "--host", "127.0.0.1"]
            process = subprocess.Popen(
                command, env=full, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            secrets: tuple[str, ...] = (SECRET, slack.token, slack.app_token, refused_bot, refused_app)
            secrets += ("abc",) if env.get("SLACK_BOT_TOKEN") == "abc" else ()
            running[name] = (process, secrets)
        results: dict[str, Refusal] = {}
        try:
            for name, (process, secrets) in running.items():
                out, err = process.communicate(timeout=60)
                results[name] = Refusal(process.returncode, out, err, secrets)
        finally:
            for process, _ in running.values():
                if process.poll() is None:
                    process.kill()
                    process.wait()
        yield results


@pytest.mark.parametrize("case", list(REFUSALS))
def test_start_up_refusals_exit_1_with_one_line_naming_the_variable(
    refusals: dict[str, Refusal], case: str
) -> None:
    variable, words = REFUSALS[case]
    result = refusals[case]
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    # Logging of a bot that got as far as connecting (INFO by default) is allowed before the one line.
    lines = [ln for ln in result.stderr.splitlines() if ln.strip() and not re.match(r"\d{4}-\d\d-\d\d ", ln)]
    assert len(lines) == 1, result.stderr
    (line,) = lines
    assert line.startswith("icp-bot: ") and variable in line and words in line, line
    if case != "app token refused (invalid_auth)":
        assert result.stderr.strip() == line  # nothing but the line
    else:
        assert "SLACK_BOT_TOKEN" not in line  # the app token is at fault, not the bot token
    for secret in result.secrets:
        assert secret not in result.stderr and secret not in result.stdout, f"{case} shows a secret"
