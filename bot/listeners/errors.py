"""The one error handler: log the traceback, tell the person something useful."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, ParamSpec

from slack_bolt import Ack, App, BoltResponse
from slack_bolt.context.respond import Respond
from slack_sdk.errors import SlackApiError

from bot.services import explain_slack_error
from bot.workspaces import Workspaces

log = logging.getLogger("icp_bot")
P = ParamSpec("P")


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


def register(app: App, workspaces: Workspaces) -> None:
    del workspaces  # the handler needs nothing beyond the request

    @app.error
    def on_error(
        error: Exception, body: dict[str, Any], respond: Respond | None = None
    ) -> BoltResponse | None:
        return handle_error(error, body, respond)


def reported(func: Callable[P, None]) -> Callable[P, None]:
    """Run a command/action/view listener so that any error is logged and told to the person.

    Bolt loses the acknowledgement when a listener raises right after `ack()` (a race in its
    thread runner: Slack then sees a 404 after 3 s), so listeners that ack never let an error out.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            func(*args, **kwargs)
        except Exception as error:
            ack = kwargs.get("ack")
            if isinstance(ack, Ack) and ack.response is None:
                ack()
            body = kwargs.get("body") or kwargs.get("command") or {}
            respond = kwargs.get("respond")
            handle_error(
                error,
                body if isinstance(body, dict) else {},
                respond if isinstance(respond, Respond) else None,
            )

    return wrapper
