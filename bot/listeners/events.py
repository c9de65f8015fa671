"""Channel messages: capture outcomes, follow edits and deletes, and answer mentions.

Slack may deliver a message several times (retries, Socket Mode redeliveries, and the message +
app_mention double for a message that mentions the bot). Storage is idempotent on workspace +
channel + ts and the confirmation is claimed atomically, so every copy can be handled the same way.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.listeners.admin import handle_admin_mention
from bot.services import BotServices, explain_slack_error
from bot.workspaces import Workspaces
from insights.capture import IncomingMessage, capture_message, delete_message, edit_message
from insights.errors import RetryLater

log = logging.getLogger("icp_bot")

# Message subtypes that carry something a person wrote; joins, topic changes and the like do not.
CAPTURED_SUBTYPES = frozenset({None, "bot_message", "thread_broadcast", "file_share"})
_ID = re.compile(r"^[A-Z0-9]{2,30}$")


def _field(value: object) -> str:
    """A message field as stored: a string (never the repr of a list or an object), without NUL,
    which PostgreSQL refuses in text and no person types."""
    return value.replace("\x00", "") if isinstance(value, str) else ""


def incoming_message(
    services: BotServices, channel: str, message: dict[str, Any], event_id: str | None
) -> IncomingMessage:
    """A channel message (from an event, or from the history catch-up) as capture takes it."""
    ts = _field(message.get("ts"))
    thread_ts = _field(message.get("thread_ts")) or None
    return IncomingMessage(
        channel=channel,
        ts=ts,
        text=_field(message.get("text")),
        user=_field(message.get("user")) or _field(message.get("bot_id")) or None,
        thread_ts=thread_ts if thread_ts != ts else None,
        permalink=services.permalink(channel, ts, thread_ts),
        event_id=_field(event_id) or None,  # a signed body may still hold junk
    )


def _from_allowed_author(services: BotServices, message: dict[str, Any]) -> bool:
    """People, always; other bots only when icp.yml names them (capture.bots)."""
    if not message.get("bot_id") and message.get("subtype") != "bot_message":
        return True
    if message.get("bot_id") == services.bot_user_id or message.get("user") == services.bot_user_id:
        return False
    profile = message.get("bot_profile")
    if not isinstance(profile, dict):
        profile = {}
    names = {str(message.get(k) or "").lower() for k in ("bot_id", "username")}
    names |= {str(profile.get(k) or "").lower() for k in ("name", "id", "app_id")}
    return bool(names & services.allowed_bots)


def capturable_channel(services: BotServices, event: dict[str, Any], message: dict[str, Any]) -> str | None:
    """The channel to capture from, or None when the message is not ours to capture."""
    channel = str(event.get("channel") or "")
    if not _ID.match(channel) or not message.get("ts") or message.get("hidden"):
        return None
    if channel not in services.channels or not _from_allowed_author(services, message):
        return None
    return channel


def _subtype(message: dict[str, Any]) -> str | None:
    """The message's subtype; one of another type (not what Slack sends) reads as "not ours"."""
    subtype = message.get("subtype")
    return subtype if subtype is None or isinstance(subtype, str) else "(invalid)"


def handle_message(event: dict[str, Any], body: dict[str, Any], services: BotServices) -> None:
    if _subtype(event) not in CAPTURED_SUBTYPES:
        return
    channel = capturable_channel(services, event, event)
    if channel is None:
        return
    incoming = incoming_message(services, channel, event, body.get("event_id"))
    result = capture_message(
        services.ctx.session_factory,
        services.team_id,
        incoming,
        services.tagger.current,
        services.ctx.config.icp,
    )
    if result.action != "ignored":
        log.info("message %s in %s: %s", incoming.ts, services.channels.name_of(channel), result.action)
    if result.confirm and result.note is not None:
        services.post_confirmation(result.note, look_first=result.confirm_again)
    elif result.confirm_pending:
        # A handler that claimed the confirmation has not recorded it: it is still posting, or its
        # process died in between. The inbox keeps this event claimed and, once that claim is
        # stale, processes it again and posts the confirmation itself.
        raise RetryLater(f"the confirmation of message {incoming.ts} is still claimed by another handler")


def handle_message_changed(event: dict[str, Any], body: dict[str, Any], services: BotServices) -> None:
    message = event.get("message") or {}
    if not isinstance(message, dict):
        return
    if _subtype(message) == "tombstone":  # a thread parent deleted while it has replies
        handle_message_deleted({"channel": event.get("channel"), "deleted_ts": message.get("ts")}, services)
        return
    channel = capturable_channel(services, event, message)
    if channel is None:
        return
    incoming = incoming_message(services, channel, message, body.get("event_id"))
    result = edit_message(
        services.ctx.session_factory,
        services.team_id,
        incoming,
        services.tagger.current,
        services.ctx.config.icp,
    )
    if result.action == "unchanged" or result.note is None:
        return
    log.info("edited message %s in %s: %s", incoming.ts, services.channels.name_of(channel), result.action)
    if result.action == "retracted":
        services.withdraw_confirmation(result.note)
    elif result.confirm:
        services.post_confirmation(result.note, look_first=result.confirm_again)
    else:
        services.update_confirmation(result.note)


def handle_message_deleted(event: dict[str, Any], services: BotServices) -> None:
    channel, ts = str(event.get("channel") or ""), str(event.get("deleted_ts") or "")
    if not channel or not ts:
        return
    result = delete_message(services.ctx.session_factory, services.team_id, channel, ts)
    if result.action == "retracted" and result.note is not None:
        log.info("deleted message %s in %s: note retracted", ts, services.channels.name_of(channel))
        services.withdraw_confirmation(result.note)


def handle_app_mention(
    event: dict[str, Any], body: dict[str, Any], client: WebClient, services: BotServices
) -> None:
    """Admin commands ("digest now", "help"); in a capture channel a mention is also the message's
    twin; elsewhere the bot says what it does."""
    if handle_admin_mention(event, services):
        return
    channel = str(event.get("channel") or "")
    if channel in services.channels:
        handle_message(event, body, services)
        return
    if not _ID.match(channel) or not event.get("ts"):
        return
    where = (
        ", ".join(services.channels.name_of(c) for c in sorted(services.channels.ids())) or "no channel yet"
    )
    try:
        client.chat_postMessage(
            channel=channel,
            thread_ts=_field(event.get("thread_ts")) or _field(event.get("ts")),
            text=(
                f"I capture win/loss notes in {where}, and `/icp-fit Acme Corp` tells you how well an "
                "account fits our ICP (only you see the answer)."
            ),
        )
    except SlackApiError as error:  # refused for good (not_in_channel, …): retrying changes nothing
        log.warning("could not answer a mention in %s: %s", channel, explain_slack_error(error, channel))


def handle_event_body(body: dict[str, Any], workspaces: Workspaces) -> None:
    """One stored `event_callback` body, routed as Bolt would route it (the inbox worker's entry),
    to the services of the workspace it came from."""
    event = body.get("event")
    if not isinstance(event, dict):
        return
    kind, subtype = event.get("type"), _subtype(event)
    if not isinstance(kind, str):
        return
    team = event_team(body)
    if kind in {"app_uninstalled", "tokens_revoked"}:
        tokens = event.get("tokens")
        if kind == "app_uninstalled" or (isinstance(tokens, dict) and tokens.get("bot")):
            workspaces.uninstall(team)
        return
    services = workspaces.for_team(team)
    if services is None:
        log.info("an event from workspace %s, which has no installation here: dropped", team or "?")
        return
    if kind == "message":
        if subtype == "message_changed":
            handle_message_changed(event, body, services)
        elif subtype == "message_deleted":
            handle_message_deleted(event, services)
        else:
            handle_message(event, body, services)
    elif kind == "app_mention":
        handle_app_mention(event, body, services.client, services)


def event_team(body: dict[str, Any]) -> str | None:
    """The workspace an event_callback belongs to."""
    team = body.get("team_id")
    if isinstance(team, str) and team:
        return team
    authorizations = body.get("authorizations")
    first = authorizations[0] if isinstance(authorizations, list) and authorizations else None
    found = first.get("team_id") if isinstance(first, dict) else None
    return found if isinstance(found, str) and found else None


def register(app: App, workspaces: Workspaces) -> None:
    """Events normally reach the handlers through the inbox (bot.inbox); these listeners serve an
    app dispatched directly (a FaaS adapter, in-process tests), through the same router."""

    # Bolt runs the first listener that matches, so the subtype listeners come first.
    @app.event({"type": "message", "subtype": "message_changed"})
    def message_changed(body: dict[str, Any]) -> None:
        handle_event_body(body, workspaces)

    @app.event({"type": "message", "subtype": "message_deleted"})
    def message_deleted(body: dict[str, Any]) -> None:
        handle_event_body(body, workspaces)

    @app.event("message")
    def message(body: dict[str, Any]) -> None:
        handle_event_body(body, workspaces)

    @app.event("app_mention")
    def app_mention(body: dict[str, Any]) -> None:
        handle_event_body(body, workspaces)

    @app.event("app_uninstalled")
    def app_uninstalled(body: dict[str, Any]) -> None:
        handle_event_body(body, workspaces)

    @app.event("tokens_revoked")
    def tokens_revoked(body: dict[str, Any]) -> None:
        handle_event_body(body, workspaces)

    @app.event(re.compile(".*"))
    def any_other_event() -> None:
        """Events the app did not ask for (or Slack adds later) are acknowledged and dropped."""
