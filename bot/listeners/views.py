"""The Change modal's submission: a person's labels replace the machine's, for good."""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt import Ack, App, BoltContext

from bot import surface
from bot.access import not_allowed_plain
from bot.blocks import parse_correction
from bot.listeners.errors import reported
from bot.services import BotServices
from bot.workspaces import Workspaces
from insights.capture import InvalidCorrectionError, correct_note, get_note

log = logging.getLogger("icp_bot")


def handle_note_correct(ack: Ack, body: dict[str, Any], view: dict[str, Any], services: BotServices) -> None:
    state = view.get("state")
    correction = parse_correction(state.get("values") if isinstance(state, dict) else None)
    if not correction.kind:
        ack(response_action="errors", errors={"kind": "Choose what this message reports."})
        return
    try:
        meta = json.loads(str(view.get("private_metadata") or "{}"))
        note_id = int(meta["note"])
    except (ValueError, KeyError, TypeError):
        ack(response_action="errors", errors={"kind": "This form is out of date; click Change again."})
        return
    who = body.get("user")
    user = str(who.get("id") or "") if isinstance(who, dict) else ""
    # Checked again here, not only on the Change click: a submission is its own request.
    note = get_note(services.ctx.session_factory, services.team_id, note_id)
    if note is not None and not services.admins.may_change(note.user, user):
        log.info("%s may not change a note of %s: submission refused", user, note.user or "an integration")
        ack(response_action="errors", errors={"kind": not_allowed_plain(note.user)})
        return
    try:
        result = correct_note(
            services.ctx.session_factory,
            services.team_id,
            note_id,
            user,
            correction,
            icp=services.ctx.config.icp,
        )
    except InvalidCorrectionError as error:
        block = error.field if error.field in {"kind", "account", "reasons", "competitor"} else "kind"
        ack(response_action="errors", errors={block: str(error)})
        return
    ack()  # closes the modal
    if result.note is not None:
        services.update_confirmation(result.note)
    services.tagger.refresh_soon()  # learn from the correction


def register(app: App, workspaces: Workspaces) -> None:
    @app.view(surface.NOTE_CORRECT)
    @reported
    def note_correct(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext) -> None:
        if services := workspaces.for_request(context, ack):
            handle_note_correct(ack, body, view, services)
