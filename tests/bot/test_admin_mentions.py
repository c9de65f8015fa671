"""Commands by mention: "@icp-bot digest now" for ICP admins only, "digest preview", "help"."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bot.digest_jobs import DigestPoster
from bot.listeners.admin import admin_command, handle_admin_mention, help_text
from bot.services import BotServices
from bot.standin import SlackStandIn
from insights.capture import IncomingMessage, capture_message
from insights.config import Config
from insights.digest_runs import recent_digest_runs
from insights.tagging import Tagger
from tests.bot.inprocess import make_services

TEAM = "T1"
DUE = datetime(2026, 11, 23, 9, 0, tzinfo=ZoneInfo("America/New_York"))  # the digest of Nov 16-23
_ts = itertools.count(1)


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn() as standin:
        standin.set_usergroup("S0ICPADMINS", ["U0DANA"])
        yield standin


@pytest.fixture
def services(
    session_factory: sessionmaker[Session], config: Config, slack: SlackStandIn, tagger: Tagger
) -> BotServices:
    for day, text in enumerate(["Lost Contoso to Gong on price", "We won Fabrikam! $120k ARR"]):
        ts = datetime(2026, 11, 17 + day, 15, tzinfo=UTC).timestamp()
        message = IncomingMessage("C0DEALS", f"{ts:.6f}", text, "U0MAYA")
        assert capture_message(session_factory, TEAM, message, tagger, config.icp).action == "created"
    return make_services(session_factory, config, slack, admins=["U0LEAD", "S0ICPADMINS"])


def _mention(text: str, user: str = "U0LEAD", channel: str = "C0DEALS", **extra: Any) -> dict[str, Any]:
    ts = f"1763900000.{next(_ts):06d}"
    return {"type": "app_mention", "user": user, "text": text, "ts": ts, "channel": channel, **extra}


def _poster(services: BotServices) -> DigestPoster:
    return DigestPoster(services.ctx, services.client, backoff=(), sleep=lambda _: None, trigger="manual")


def _replies(slack: SlackStandIn, event: dict[str, Any], method: str = "chat.postMessage") -> list[str]:
    """The bot's answers in the mention's thread: for everyone, or (chat.postEphemeral) for its author."""
    return [
        str(c.args.get("text"))
        for c in slack.calls_to(method)
        if c.args.get("channel") == event["channel"]
        and c.args.get("thread_ts") == event["ts"]
        and c.args.get("user", event["user"]) == event["user"]
    ]


def _digests(slack: SlackStandIn) -> list[dict[str, Any]]:
    return [m for m in slack.messages_in("C0DIGEST") if not m.get("subtype")]


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("<@U0BOT> digest now", "post"),
        ("<@U0BOT>   Digest NOW!", "post"),
        ("<@U0BOT|icp-bot> post the digest", "post"),
        ("digest now <@U0BOT>", "post"),
        ("<@U0BOT> digest preview", "preview"),
        ("<@U0BOT> help", "help"),
        ("<@U0BOT> settings?", "help"),
        ("<@U0BOT> we lost Contoso, digest now pls", None),
        ("<@U0BOT> closed won Northwind Traders today", None),
        ("<@U0OTHER> digest now", None),  # someone else was mentioned
        ("digest now", None),
    ],
)
def test_only_a_whole_message_command_to_the_bot_counts(text: str, command: str | None) -> None:
    assert admin_command(text, "U0BOT") == command


@pytest.mark.parametrize("who", ["U0LEAD", "U0DANA"])
def test_an_admin_posts_the_digest_once_and_is_told_in_the_thread(
    who: str, services: BotServices, slack: SlackStandIn
) -> None:
    event = _mention("<@U0BOT> digest now", user=who)
    assert handle_admin_mention(event, services, poster=_poster(services), now=DUE) is True
    (digest,) = _digests(slack)
    assert "ICP digest · week of Nov 16" in json.dumps(digest["blocks"], ensure_ascii=False)
    assert _replies(slack, event) == [
        f"Posted the digest for the week of Nov 16 to <#C0DIGEST>, as <@{who}> asked."
    ]
    (run,) = recent_digest_runs(services.ctx.session_factory, TEAM)
    assert (run.state, run.trigger) == ("posted", "manual")

    again = _mention("<@U0BOT> digest now", user=who)
    assert handle_admin_mention(again, services, poster=_poster(services), now=DUE)
    assert len(_digests(slack)) == 1
    assert _replies(slack, again) == [
        "The digest for the week of Nov 16 was already posted to <#C0DIGEST>; it posts once a week."
    ]


def test_a_retried_mention_gets_no_second_answer(services: BotServices, slack: SlackStandIn) -> None:
    event = _mention("<@U0BOT> digest now")
    assert handle_admin_mention(event, services, poster=_poster(services), now=DUE)
    assert handle_admin_mention(dict(event), services, poster=_poster(services), now=DUE)
    assert len(_replies(slack, event)) == 1 and len(_digests(slack)) == 1


def test_anyone_else_is_told_only_admins_can_and_nothing_is_posted(
    services: BotServices, slack: SlackStandIn
) -> None:
    event = _mention("<@U0BOT> digest now", user="U0RAJ")
    assert handle_admin_mention(event, services, poster=_poster(services), now=DUE)
    # Privately: a public answer listing the admins would notify them all.
    assert _replies(slack, event) == []
    assert _replies(slack, event, "chat.postEphemeral") == [
        "<@U0RAJ>, only an ICP admin can post the digest by hand (<@U0LEAD>, <!subteam^S0ICPADMINS>)."
    ]
    assert _digests(slack) == [] and recent_digest_runs(services.ctx.session_factory, TEAM) == []
    preview = _mention("<@U0BOT> digest preview", user="U0RAJ")
    assert handle_admin_mention(preview, services, now=DUE)
    (refused,) = _replies(slack, preview, "chat.postEphemeral")
    assert refused.startswith("<@U0RAJ>, only an ICP admin") and "week of" not in refused


def test_without_admins_the_refusal_says_how_to_name_them(
    session_factory: sessionmaker[Session], config: Config, slack: SlackStandIn
) -> None:
    services = make_services(session_factory, config, slack)
    event = _mention("<@U0BOT> digest now")
    assert handle_admin_mention(event, services, now=DUE)
    (reply,) = _replies(slack, event, "chat.postEphemeral")
    assert "none is set" in reply and "`admins:` in icp.yml" in reply and "icp-bot digest --post" in reply
    assert _digests(slack) == []


def test_a_preview_is_shown_only_to_the_admin_who_asked(services: BotServices, slack: SlackStandIn) -> None:
    event = _mention("<@U0BOT> digest preview", user="U0DANA", thread_ts="1763800000.000100")
    assert handle_admin_mention(event, services, now=DUE)
    (shown,) = slack.calls_to("chat.postEphemeral")
    assert shown.args["user"] == "U0DANA" and shown.args["thread_ts"] == "1763800000.000100"
    assert "ICP digest · week of Nov 16" in json.dumps(shown.args["blocks"], ensure_ascii=False)
    assert _digests(slack) == [] and recent_digest_runs(services.ctx.session_factory, TEAM) == []


def test_help_says_what_is_captured_where_the_digest_goes_and_who_the_admins_are(
    services: BotServices, slack: SlackStandIn
) -> None:
    event = _mention("<@U0BOT> help", user="U0RAJ")  # anyone may ask; the answer is theirs only
    assert handle_admin_mention(event, services)
    assert _replies(slack, event) == []
    (reply,) = _replies(slack, event, "chat.postEphemeral")
    assert reply == help_text(services)
    assert "posted in <#C0DEALS>" in reply
    assert "<#C0DIGEST> every Monday at 09:00 (America/New_York)" in reply
    assert "ICP admins — <@U0LEAD>, <!subteam^S0ICPADMINS> — may also change anyone's notes" in reply
    assert "Only you see the answer" in reply
    assert "kept until deleted" in reply


def test_help_states_the_retention_period(
    session_factory: sessionmaker[Session], config: Config, slack: SlackStandIn
) -> None:
    kept = config.model_copy(update={"retention": config.retention.model_copy(update={"notes_months": 18})})
    services = make_services(session_factory, kept, slack)
    text = help_text(services)
    assert "deleted after 18 months" in text and "No ICP admins are set" in text


def test_other_mentions_are_left_to_the_caller(services: BotServices, slack: SlackStandIn) -> None:
    assert not handle_admin_mention(_mention("<@U0BOT> closed won Northwind Traders today"), services)
    assert not handle_admin_mention(_mention("<@U0BOT> digest now", channel=""), services)
    assert slack.calls == []


def test_a_mention_the_bot_cannot_answer_is_logged_not_retried(
    services: BotServices, slack: SlackStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    """Outside the capture channels a mention gets a short "what I do"; when Slack refuses it (the
    bot was removed meanwhile), that is one warning, not an error the inbox retries five times."""
    from bot.listeners.events import handle_app_mention

    event = _mention("<@U0BOT> what do you do?", user="U0MAYA", channel="C0OTHER")
    slack.fail_next("chat.postMessage", "not_in_channel")
    with caplog.at_level("WARNING"):
        handle_app_mention(event, {"event": event}, services.client, services)
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [200]
    (warning,) = [r for r in caplog.records if r.name == "icp_bot" and r.levelname == "WARNING"]
    assert "could not answer a mention in C0OTHER" in warning.getMessage()
    assert "not_in_channel" in warning.getMessage() or "invite" in warning.getMessage()
