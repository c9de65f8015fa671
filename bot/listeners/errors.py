"""The one error handler: log the traceback, tell the person something useful."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App, BoltResponse
from slack_bolt.context.respond import Respond
from slack_sdk.errors import SlackApiError

from bot.services import BotServices, explain_slack_error

log = logging.getLogger("icp_bot")


def handle_error(error: Exception, body: dict[str, Any], respond: Respond | None) -> BoltResponse | None:
    kind = body.get("type") or (body.get("command") and "command") or "request"
    channel = str((body.get("channel") or {}).get("name") or body.get("channel_name") or "this channel")
    if isinstance(error, SlackApiError):
        explanation = explain_slack_error(error, f"#{channel.lstrip('#')}")
        log.error("Slack refused a call while handling a %s: %s", kind, explanation, exc_info=error)
        message = f"Slack refused what I tried to do ({explanation})."
    else:
        log.error("error while handling a %s", kind, exc_info=error)
        message = "Something went wrong on my side and it has been logged. Please try again in a minute."
    if respond is not None and body.get("response_url"):
        try:
            respond(text=message, response_type="ephemeral", replace_original=False)
        except Exception:
            log.exception("could not tell the person about the error")
    return None


def register(app: App, services: BotServices) -> None:
    del services  # the handler needs nothing beyond the request

    @app.error
    def on_error(
        error: Exception, body: dict[str, Any], respond: Respond | None = None
    ) -> BoltResponse | None:
        return handle_error(error, body, respond)
