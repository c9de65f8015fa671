"""Slack's request bodies in their exact shapes, and a sender that delivers them to the bot.

Used by the black-box tests, the demo and the benchmark. The shapes follow Slack's documentation
(Events API `event_callback`, slash command form fields, `block_actions` and `view_submission`
payloads); `SlackSender` signs them for HTTP mode or pushes them as Socket Mode envelopes.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

if TYPE_CHECKING:
    from bot.standin import SlackStandIn

_event_ids = itertools.count(1)


def sign(body: bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """The headers Slack sends: X-Slack-Request-Timestamp and the v0 HMAC-SHA256 signature."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    base = b"v0:" + stamp.encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}"}


@dataclass
class Workspace:
    """The workspace the requests come from."""

    team_id: str = "T0STANDIN"
    team_domain: str = "standin"
    api_app_id: str = "A0STANDIN"
    bot_user_id: str = "U0BOT"
    users: dict[str, str] = field(default_factory=lambda: {"U0MAYA": "maya"})

    # -- Events API ----------------------------------------------------------------------------

    def event_callback(self, event: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
        return {
            "token": "legacy-verification-token",
            "team_id": self.team_id,
            "context_team_id": self.team_id,
            "api_app_id": self.api_app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{next(_event_ids):010d}",
            "event_time": int(time.time()),
            "authorizations": [
                {"enterprise_id": None, "team_id": self.team_id, "user_id": self.bot_user_id,
                 "is_bot": True, "is_enterprise_install": False}
            ],
            "is_ext_shared_channel": False,
            "event_context": f"4-{self.team_id}-{next(_event_ids)}",
        }  # fmt: skip

    def message(
        self,
        channel: str,
        text: str,
        ts: str,
        *,
        user: str = "U0MAYA",
        thread_ts: str | None = None,
        channel_type: str = "channel",
        **extra: Any,
    ) -> dict[str, Any]:
        """A `message` event as a person posts it (no subtype)."""
        event: dict[str, Any] = {
            "type": "message",
            "text": text,
            "user": user,
            "ts": ts,
            "team": self.team_id,
            "blocks": [{"type": "rich_text", "block_id": "b1", "elements": [
                {"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}]}],
            "channel": channel,
            "event_ts": ts,
            "channel_type": channel_type,
            "client_msg_id": f"{abs(hash((channel, ts))) % 10**12:012d}-msg",
        }  # fmt: skip
        if thread_ts:
            event["thread_ts"] = thread_ts
            event["parent_user_id"] = user
        event.update(extra)
        return event

    def thread_broadcast(
        self, channel: str, text: str, ts: str, thread_ts: str, *, user: str = "U0MAYA"
    ) -> dict[str, Any]:
        event = self.message(channel, text, ts, user=user, thread_ts=thread_ts)
        event["subtype"] = "thread_broadcast"
        event["root"] = {
            "type": "message",
            "ts": thread_ts,
            "thread_ts": thread_ts,
            "user": user,
            "text": "…",
        }
        return event

    def bot_message(
        self, channel: str, text: str, ts: str, *, name: str, bot_id: str = "B0CRM"
    ) -> dict[str, Any]:
        """A post by another app (an integration such as a CRM bot)."""
        return {
            "type": "message",
            "subtype": "bot_message",
            "text": text,
            "ts": ts,
            "username": name,
            "bot_id": bot_id,
            "bot_profile": {
                "id": bot_id,
                "app_id": "A0CRM",
                "name": name,
                "team_id": self.team_id,
                "deleted": False,
            },
            "channel": channel,
            "event_ts": ts,
            "channel_type": "channel",
        }

    def app_mention(self, channel: str, text: str, ts: str, *, user: str = "U0MAYA") -> dict[str, Any]:
        event = self.message(channel, text, ts, user=user)
        event["type"] = "app_mention"
        event.pop("channel_type")
        return event

    def message_changed(
        self,
        channel: str,
        ts: str,
        new_text: str,
        old_text: str,
        *,
        user: str = "U0MAYA",
        edited_at: str | None = None,
    ) -> dict[str, Any]:
        """An edit: the new message under `message`, the old under `previous_message`."""
        edited = edited_at or f"{time.time():.6f}"
        return {
            "type": "message",
            "subtype": "message_changed",
            "message": {"type": "message", "text": new_text, "user": user, "ts": ts, "team": self.team_id,
                        "edited": {"user": user, "ts": edited}, "source_team": self.team_id},
            "previous_message": {"type": "message", "text": old_text, "user": user, "ts": ts,
                                 "team": self.team_id},
            "channel": channel,
            "hidden": True,
            "ts": edited,
            "event_ts": edited,
            "channel_type": "channel",
        }  # fmt: skip

    def message_deleted(
        self, channel: str, ts: str, old_text: str, *, user: str = "U0MAYA"
    ) -> dict[str, Any]:
        now = f"{time.time():.6f}"
        return {
            "type": "message",
            "subtype": "message_deleted",
            "previous_message": {"type": "message", "text": old_text, "user": user, "ts": ts,
                                 "team": self.team_id},
            "channel": channel,
            "hidden": True,
            "deleted_ts": ts,
            "event_ts": now,
            "ts": now,
            "channel_type": "channel",
        }  # fmt: skip

    # -- commands and interactivity ------------------------------------------------------------------

    def slash_command(
        self,
        text: str,
        response_url: str,
        *,
        command: str = "/icp-fit",
        user: str = "U0MAYA",
        channel: str = "C0DEALS",
    ) -> dict[str, str]:
        """The form fields of a slash command request."""
        return {
            "token": "legacy-verification-token",
            "team_id": self.team_id,
            "team_domain": self.team_domain,
            "channel_id": channel,
            "channel_name": "deals",
            "user_id": user,
            "user_name": self.users.get(user, user.lower()),
            "command": command,
            "text": text,
            "api_app_id": self.api_app_id,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": f"{int(time.time())}.{next(_event_ids)}.standin",
        }

    def block_actions(
        self,
        action_id: str,
        value: str,
        *,
        response_url: str,
        channel: str = "C0DEALS",
        message_ts: str = "1700000000.000100",
        user: str = "U0MAYA",
        ephemeral: bool = False,
    ) -> dict[str, Any]:
        """A button click (`block_actions`)."""
        container = {"type": "ephemeral" if ephemeral else "message", "message_ts": message_ts,
                     "channel_id": channel, "is_ephemeral": ephemeral}  # fmt: skip
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {"id": user, "username": self.users.get(user, user.lower()), "team_id": self.team_id},
            "api_app_id": self.api_app_id,
            "token": "legacy-verification-token",
            "container": container,
            "trigger_id": f"{int(time.time())}.{next(_event_ids)}.standin",
            "team": {"id": self.team_id, "domain": self.team_domain},
            "is_enterprise_install": False,
            "channel": {"id": channel, "name": "deals"},
            "response_url": response_url,
            "actions": [{"action_id": action_id, "block_id": "actions",
                         "text": {"type": "plain_text", "text": "…"},
                         "value": value, "type": "button", "action_ts": f"{time.time():.6f}"}],
        }  # fmt: skip
        if not ephemeral:
            payload["message"] = {"type": "message", "ts": message_ts, "user": self.bot_user_id, "text": "…"}
        return payload

    def view_submission(
        self, view: dict[str, Any], values: dict[str, dict[str, Any]], *, user: str = "U0MAYA"
    ) -> dict[str, Any]:
        """A modal's Save (`view_submission`) with `state.values` as Slack builds them."""
        return {
            "type": "view_submission",
            "team": {"id": self.team_id, "domain": self.team_domain},
            "user": {"id": user, "username": self.users.get(user, user.lower()), "team_id": self.team_id},
            "api_app_id": self.api_app_id,
            "token": "legacy-verification-token",
            "trigger_id": f"{int(time.time())}.{next(_event_ids)}.standin",
            "view": {**view, "state": {"values": values}, "team_id": self.team_id, "app_id": self.api_app_id,
                     "bot_id": "B0BOT", "hash": "156772938.1827394"},
            "response_urls": [],
            "is_enterprise_install": False,
        }  # fmt: skip


@dataclass(frozen=True)
class Delivery:
    """What the bot answered: HTTP status and body, or the Socket Mode ack."""

    status: int
    body: str
    ack: dict[str, Any] | None = None


class SlackSender:
    """Delivers bodies to a running bot: signed HTTP requests, or Socket Mode envelopes."""

    def __init__(
        self, *, url: str | None = None, secret: str = "", standin: SlackStandIn | None = None
    ) -> None:
        if (url is None) == (standin is None):
            raise ValueError("give either url (HTTP mode) or standin (Socket Mode)")
        self.url, self.secret, self.standin = url, secret, standin

    def event(
        self, body: dict[str, Any], *, retry_num: int = 0, retry_reason: str = "http_timeout"
    ) -> Delivery:
        if self.standin is not None:
            return self._push("events_api", body, retry_num, retry_reason if retry_num else "")
        headers = {"Content-Type": "application/json"}
        if retry_num:
            headers |= {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": retry_reason}
        return self.post(json.dumps(body).encode(), headers)

    def command(self, fields: dict[str, str]) -> Delivery:
        if self.standin is not None:
            return self._push("slash_commands", fields)
        return self.post(urlencode(fields).encode(), {"Content-Type": "application/x-www-form-urlencoded"})

    def interactive(self, payload: dict[str, Any]) -> Delivery:
        if self.standin is not None:
            return self._push("interactive", payload)
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return self.post(body, {"Content-Type": "application/x-www-form-urlencoded"})

    def post(
        self, body: bytes, headers: dict[str, str], *, signed: bool = True, timestamp: int | None = None
    ) -> Delivery:
        """POST a raw body to the bot's /slack/events (signed unless told otherwise)."""
        assert self.url is not None
        all_headers = {**headers, **(sign(body, self.secret, timestamp) if signed else {})}
        request = urllib.request.Request(self.url, data=body, headers=all_headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return Delivery(response.status, response.read().decode("utf-8", "replace"))
        except urllib.error.HTTPError as error:
            return Delivery(error.code, error.read().decode("utf-8", "replace"))

    def _push(self, kind: str, payload: dict[str, Any], retry: int = 0, reason: str = "") -> Delivery:
        assert self.standin is not None
        envelope_id = self.standin.push_envelope(kind, payload, retry_attempt=retry, retry_reason=reason)
        ack = self.standin.wait_for_ack(envelope_id, timeout=30)
        return Delivery(200 if ack is not None else 0, json.dumps(ack or {}), ack)
