"""The Change modal's submission: a person's labels replace the machine's, for good."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt import Ack, App

from bot import surface
from bot.blocks import parse_correction
from bot.listeners.errors import reported
from bot.services import BotServices
from insights.capture import InvalidCorrectionError, correct_note


def handle_note_correct(ack: Ack, body: dict[str, Any], view: dict[str, Any], services: BotServices) -> None:
    correction = parse_correction(((view.get("state") or {}).get("values")) or {})
    if not correction.kind:
        ack(response_action="errors", errors={"kind": "Choose what this message reports."})
        return
    try:
        meta = json.loads(str(view.get("private_metadata") or "{}"))
        note_id = int(meta["note"])
    except (ValueError, KeyError, TypeError):
        ack(response_action="errors", errors={"kind": "This form is out of date; click Change again."})
        return
    user = str((body.get("user") or {}).get("id") or "")
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


def register(app: App, services: BotServices) -> None:
    @app.view(surface.NOTE_CORRECT)
    @reported
    def note_correct(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        handle_note_correct(ack, body, view, services)
