"""Buttons: share a fit answer, pick a suggested account, change or retract a captured note."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import surface
from bot.access import not_allowed_text
from bot.blocks import confirmation_message, correction_modal, fit_message, notice_message
from bot.listeners.errors import reported
from bot.render import escape_mrkdwn
from bot.services import BotServices, explain_slack_error
from bot.workspaces import Workspaces
from insights.capture import get_note, mark_not_outcome
from insights.config import Competitor
from insights.errors import UserError
from insights.service import FitAnswer, fit_for, fit_for_account_id

log = logging.getLogger("icp_bot")


def _action(body: dict[str, Any]) -> dict[str, Any]:
    actions = body.get("actions") or [{}]
    return actions[0] if isinstance(actions[0], dict) else {}


def _value(body: dict[str, Any]) -> dict[str, Any]:
    try:
        value = json.loads(str(_action(body).get("value") or "{}"))
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _answer(services: BotServices, value: dict[str, Any]) -> FitAnswer:
    icp = services.ctx.config.icp
    account_id = value.get("id")
    if isinstance(account_id, int):
        return fit_for_account_id(services.ctx.session_factory, services.team_id, account_id, icp)
    query = str(value.get("q") or "")
    return fit_for(
        services.ctx.session_factory, services.team_id, query, icp, name_keys=services.tagger.name_keys
    )


def handle_fit_share(ack: Ack, body: dict[str, Any], respond: Respond, services: BotServices) -> None:
    """Post the answer for everyone in the channel, then remove the private copy."""
    ack()
    try:
        answer = _answer(services, _value(body))
    except UserError as error:
        told = notice_message(escape_mrkdwn(str(error)))  # the error quotes the query as typed
        respond(response_type="ephemeral", replace_original=False, **told.as_kwargs())
        return
    user = str((body.get("user") or {}).get("id") or "")
    shared = fit_message(answer, shareable=False, shared_by=user or None)
    respond(response_type="in_channel", replace_original=False, **shared.as_kwargs())
    respond(delete_original=True)


def handle_fit_pick(ack: Ack, body: dict[str, Any], respond: Respond, services: BotServices) -> None:
    """A suggestion button: answer for that account in place of the suggestions."""
    ack()
    try:
        answer = _answer(services, _value(body))
    except UserError as error:
        respond(replace_original=True, **notice_message(escape_mrkdwn(str(error))).as_kwargs())
        return
    respond(replace_original=True, response_type="ephemeral", **fit_message(answer).as_kwargs())


def _note_id(body: dict[str, Any]) -> int | None:
    value = str(_action(body).get("value") or "")
    return int(value) if value.isdigit() else None


def _may_change(body: dict[str, Any], author: str | None, respond: Respond, services: BotServices) -> bool:
    """The note's author and admins may change it; anyone else is told why, privately, and nothing changes."""
    user = str((body.get("user") or {}).get("id") or "")
    if services.admins.may_change(author, user):
        return True
    log.info("%s may not change a note of %s: refused", user or "someone", author or "an integration")
    respond(
        replace_original=False,
        response_type="ephemeral",
        **notice_message(not_allowed_text(author, services.admins)).as_kwargs(),
    )
    return False


def handle_note_change(
    ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond, services: BotServices
) -> None:
    """Open the correction modal at once (the trigger_id lives three seconds)."""
    ack()
    note_id = _note_id(body)
    note = get_note(services.ctx.session_factory, services.team_id, note_id) if note_id else None
    if note is None:
        respond(replace_original=False, response_type="ephemeral", text="This note no longer exists.")
        return
    if not _may_change(body, note.user, respond, services):
        return
    taxonomy = services.ctx.config.taxonomy
    competitors = [c.name if isinstance(c, Competitor) else c for c in taxonomy.competitors]
    container = body.get("container") or {}
    where = {
        "channel": str(container.get("channel_id") or note.channel),
        "ts": str(container.get("message_ts") or ""),
    }
    view = correction_modal(note, list(taxonomy.reasons), competitors, where)
    try:
        client.views_open(trigger_id=str(body.get("trigger_id") or ""), view=view)
    except SlackApiError as error:  # told here: Bolt loses the ack when a listener raises after ack()
        explanation = explain_slack_error(error, services.channels.name_of(where["channel"]))
        log.warning("could not open the Change form: %s", explanation)
        respond(
            replace_original=False,
            response_type="ephemeral",
            text=f"I could not open the form: Slack refused it ({explanation}).",
        )


def handle_note_not_outcome(ack: Ack, body: dict[str, Any], respond: Respond, services: BotServices) -> None:
    ack()
    note_id = _note_id(body)
    user = str((body.get("user") or {}).get("id") or "")
    note = get_note(services.ctx.session_factory, services.team_id, note_id) if note_id else None
    if note is not None and not _may_change(body, note.user, respond, services):
        return
    result = mark_not_outcome(services.ctx.session_factory, services.team_id, note_id or 0, user)
    if result.note is None:
        respond(replace_original=False, response_type="ephemeral", text="This note no longer exists.")
        return
    respond(replace_original=True, **confirmation_message(result.note).as_kwargs())
    services.tagger.refresh_soon()  # learn from the correction


def register(app: App, workspaces: Workspaces) -> None:
    @app.action(surface.FIT_SHARE)
    @reported
    def fit_share(ack: Ack, body: dict[str, Any], respond: Respond, context: BoltContext) -> None:
        if services := workspaces.for_request(context, ack):
            handle_fit_share(ack, body, respond, services)

    @app.action(re.compile(rf"^{surface.FIT_PICK}_\d+$"))
    @reported
    def fit_pick(ack: Ack, body: dict[str, Any], respond: Respond, context: BoltContext) -> None:
        if services := workspaces.for_request(context, ack):
            handle_fit_pick(ack, body, respond, services)

    @app.action(surface.NOTE_CHANGE)
    @reported
    def note_change(
        ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond, context: BoltContext
    ) -> None:
        if services := workspaces.for_request(context, ack):
            handle_note_change(ack, body, client, respond, services)

    @app.action(surface.NOTE_NOT_OUTCOME)
    @reported
    def note_not_outcome(ack: Ack, body: dict[str, Any], respond: Respond, context: BoltContext) -> None:
        if services := workspaces.for_request(context, ack):
            handle_note_not_outcome(ack, body, respond, services)
