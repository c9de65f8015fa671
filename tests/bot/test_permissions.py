"""Who may change a captured note (its author and ICP admins), and fit answers that stay private.

The handlers run in-process against the Slack stand-in, on SQLite and PostgreSQL; the black-box
version of the same rules is in test_blackbox_permissions.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from slack_bolt import Ack, Respond
from sqlalchemy.orm import Session, sessionmaker

from bot.blocks import correction_modal
from bot.listeners.actions import (
    handle_fit_pick,
    handle_fit_share,
    handle_note_change,
    handle_note_not_outcome,
)
from bot.listeners.commands import handle_icp_fit_command
from bot.listeners.views import handle_note_correct
from bot.services import BotServices
from bot.standin import RecordedCall, SlackStandIn
from insights.capture import IncomingMessage, NoteView, capture_message, get_note
from insights.config import Config
from insights.tagging import Tagger
from tests.bot.inprocess import QuietTagger, make_services

TEAM = "T1"
AUTHOR, ADMIN, GROUP_ADMIN, STRANGER = "U0MAYA", "U0LEAD", "U0DANA", "U0RAJ"


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn() as standin:
        standin.set_usergroup("S0ICPADMINS", [GROUP_ADMIN])
        yield standin


@pytest.fixture
def services(
    session_factory: sessionmaker[Session], config: Config, slack: SlackStandIn, tagger: Tagger
) -> BotServices:
    return make_services(session_factory, config, slack, admins=[ADMIN, "S0ICPADMINS"])


def _note(services: BotServices, tagger: Tagger, text: str, user: str | None = AUTHOR) -> NoteView:
    ts = f"{datetime(2026, 11, 17, 15, tzinfo=UTC).timestamp() + len(text):.6f}"
    message = IncomingMessage("C0DEALS", ts, text, user)
    result = capture_message(services.ctx.session_factory, TEAM, message, tagger, services.ctx.config.icp)
    assert result.note is not None, text
    return result.note


def _click(slack: SlackStandIn, action_id: str, note_id: int, user: str) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "user": {"id": user},
        "trigger_id": "1.2.standin",
        "container": {"type": "message", "channel_id": "C0DEALS", "message_ts": "1763391600.000001"},
        "actions": [{"action_id": action_id, "value": str(note_id)}],
        "response_url": slack.response_url(),
    }


def _respond(body: dict[str, Any]) -> Respond:
    return Respond(response_url=body["response_url"])


def _told(slack: SlackStandIn) -> list[RecordedCall]:
    return slack.calls_to("response_url")


def _change(services: BotServices, slack: SlackStandIn, note: NoteView, user: str) -> Ack:
    body = _click(slack, "note_change", note.id, user)
    ack = Ack()  # type: ignore[no-untyped-call]
    handle_note_change(ack, body, services.client, _respond(body), services)
    return ack


def _not_outcome(services: BotServices, slack: SlackStandIn, note: NoteView, user: str) -> None:
    body = _click(slack, "note_not_outcome", note.id, user)
    handle_note_not_outcome(Ack(), body, _respond(body), services)  # type: ignore[no-untyped-call]


def _submit(services: BotServices, note: NoteView, user: str, kind: str = "win") -> Ack:
    view = correction_modal(note, [], [], {"channel": note.channel, "ts": ""}).to_dict()
    view["state"] = {"values": {"kind": {"kind": {"selected_option": {"value": kind}}}}}
    ack = Ack()  # type: ignore[no-untyped-call]
    handle_note_correct(ack, {"type": "view_submission", "user": {"id": user}}, view, services)
    return ack


# ---------------------------------------------------------------------------------------------
# Change


@pytest.mark.parametrize("who", [AUTHOR, ADMIN, GROUP_ADMIN])
def test_the_author_and_admins_get_the_correction_form(
    who: str, services: BotServices, slack: SlackStandIn, tagger: Tagger
) -> None:
    note = _note(services, tagger, "Lost Contoso to Gong on price")
    ack = _change(services, slack, note, who)
    assert ack.response is not None and ack.response.status == 200
    (opened,) = slack.calls_to("views.open")
    assert opened.args["view"]["callback_id"] == "note_correct"
    assert _told(slack) == []


def test_anyone_else_is_told_privately_and_gets_no_form(
    services: BotServices, slack: SlackStandIn, tagger: Tagger
) -> None:
    note = _note(services, tagger, "Lost Contoso to Gong on price")
    _change(services, slack, note, STRANGER)
    assert slack.calls_to("views.open") == []
    (told,) = _told(slack)
    assert told.args["response_type"] == "ephemeral" and told.args["replace_original"] is False
    assert told.args["text"] == "Only <@U0MAYA> or an ICP admin can change this note."


def test_a_note_posted_by_an_integration_is_for_admins_only(
    services: BotServices, slack: SlackStandIn, tagger: Tagger
) -> None:
    note = _note(services, tagger, "Opportunity Closed Won: Northwind Traders", user="B0SALESFORCE")
    _change(services, slack, note, STRANGER)
    (told,) = _told(slack)
    assert told.args["text"] == "Only an ICP admin can change this note."
    _change(services, slack, note, GROUP_ADMIN)
    assert len(slack.calls_to("views.open")) == 1


def test_without_admins_only_the_author_may_change_and_the_refusal_says_why(
    session_factory: sessionmaker[Session], config: Config, slack: SlackStandIn, tagger: Tagger
) -> None:
    services = make_services(session_factory, config, slack)
    note = _note(services, tagger, "Lost Contoso to Gong on price")
    _change(services, slack, note, ADMIN)
    (told,) = _told(slack)
    assert "No ICP admins are set" in told.args["text"]
    _change(services, slack, note, AUTHOR)
    assert len(slack.calls_to("views.open")) == 1


# ---------------------------------------------------------------------------------------------
# Not an outcome


def test_not_an_outcome_by_anyone_else_changes_nothing(
    services: BotServices, slack: SlackStandIn, tagger: Tagger
) -> None:
    note = _note(services, tagger, "Lost Contoso to Gong on price")
    _not_outcome(services, slack, note, STRANGER)
    (told,) = _told(slack)
    assert told.args["response_type"] == "ephemeral" and "Only <@U0MAYA>" in told.args["text"]
    kept = get_note(services.ctx.session_factory, TEAM, note.id)
    assert kept is not None and (kept.status, kept.corrected_by) == ("active", None)
    assert isinstance(services.tagger, QuietTagger) and services.tagger.refreshes == 0


@pytest.mark.parametrize("who", [AUTHOR, GROUP_ADMIN])
def test_not_an_outcome_by_the_author_or_an_admin_retracts_the_note(
    who: str, services: BotServices, slack: SlackStandIn, tagger: Tagger
) -> None:
    note = _note(services, tagger, "Lost Contoso to Gong on price")
    _not_outcome(services, slack, note, who)
    (replaced,) = _told(slack)
    assert replaced.args["replace_original"] is True and f"removed by <@{who}>" in replaced.args["text"]
    gone = get_note(services.ctx.session_factory, TEAM, note.id)
    assert gone is not None and (gone.status, gone.corrected_by) == ("retracted", who)


# ---------------------------------------------------------------------------------------------
# The modal's submission is checked again


def test_a_submission_by_anyone_else_is_refused_in_the_modal(
    services: BotServices, slack: SlackStandIn, tagger: Tagger
) -> None:
    note = _note(services, tagger, "Lost Contoso to Gong on price")
    ack = _submit(services, note, STRANGER)
    assert ack.response is not None
    answer = json.loads(ack.response.body)
    assert answer["response_action"] == "errors"
    assert answer["errors"]["kind"].startswith("Only the person who posted this message or an ICP admin")
    kept = get_note(services.ctx.session_factory, TEAM, note.id)
    assert kept is not None and (kept.kind, kept.corrected_by) == ("loss", None)
    assert slack.calls_to("chat.update") == []


@pytest.mark.parametrize("who", [AUTHOR, ADMIN, GROUP_ADMIN])
def test_a_submission_by_the_author_or_an_admin_is_saved(
    who: str, services: BotServices, slack: SlackStandIn, tagger: Tagger
) -> None:
    note = _note(services, tagger, "Lost Contoso to Gong on price")
    ack = _submit(services, note, who, kind="renewal_loss")
    assert ack.response is not None and ack.response.body == ""  # closes the modal
    saved = get_note(services.ctx.session_factory, TEAM, note.id)
    assert saved is not None and (saved.kind, saved.corrected_by) == ("renewal_loss", who)


# ---------------------------------------------------------------------------------------------
# Fit answers are private unless shared


def test_fit_answers_and_picks_are_ephemeral_and_only_share_posts_in_channel(
    services: BotServices, slack: SlackStandIn
) -> None:
    url = slack.response_url()
    command = {"text": "acmecorp.com", "user_id": STRANGER, "response_url": url}
    handle_icp_fit_command(Ack(), command, Respond(response_url=url), services)  # type: ignore[no-untyped-call]
    (answer,) = _told(slack)
    assert answer.args["response_type"] == "ephemeral"
    share = next(
        e for b in answer.args["blocks"] if b["type"] == "actions" for e in b["elements"]
    )  # the answer's only button
    assert share["action_id"] == "fit_share"

    pick = {"actions": [{"value": share["value"]}], "user": {"id": STRANGER}, "response_url": url}
    handle_fit_pick(Ack(), pick, Respond(response_url=url), services)  # type: ignore[no-untyped-call]
    assert _told(slack)[-1].args["response_type"] == "ephemeral"

    handle_fit_share(Ack(), pick, Respond(response_url=url), services)  # type: ignore[no-untyped-call]
    shared, removed = _told(slack)[-2:]
    assert shared.args["response_type"] == "in_channel"
    assert f"shared by <@{STRANGER}>" in json.dumps(shared.args["blocks"])
    assert removed.args["delete_original"] is True
