"""What the listeners share, built once by the composition root (bot.app).

No live database session lives here: listeners run on Bolt's worker threads after the ack, so
they get the session factory and open their own transactions through the use cases.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import surface
from bot.access import AdminDirectory
from bot.blocks import confirmation_message
from bot.context import AppContext
from insights.capture import NoteView, record_confirmation
from insights.matching import NameKeys
from insights.tagging import Tagger

log = logging.getLogger("icp_bot")

# The fix a person can make for each Web API error the bot meets in practice.
_FIXES = {
    "not_in_channel": "invite the bot to {channel} (/invite @icp-bot)",
    "channel_not_found": "invite the bot to {channel}, or check capture.channels in icp.yml",
    "is_archived": "{channel} is archived; remove it from capture.channels in icp.yml",
    "user_not_in_channel": "the person is no longer in {channel}",
    "missing_scope": "add the missing scope to the app (manifest.yml) and reinstall it",
    "not_allowed_token_type": "SLACK_BOT_TOKEN must be a bot token (xoxb-)",
    "invalid_auth": "SLACK_BOT_TOKEN was revoked or is wrong; copy it again from the app's OAuth page",
    "account_inactive": "SLACK_BOT_TOKEN was revoked or is wrong; copy it again from the app's OAuth page",
    "ratelimited": "Slack is rate-limiting the bot; it will catch up",
    "msg_too_long": "the message was too long for Slack",
    "invalid_blocks": "the message was refused by Slack (invalid blocks); please report it",
    "cant_update_message": "the bot can only edit its own messages",
    "message_not_found": "the message was already deleted",
}


def slack_error_code(error: SlackApiError) -> str:
    return (
        str(error.response.get("error") or "unknown_error") if error.response is not None else "unknown_error"
    )


def explain_slack_error(error: SlackApiError, channel: str) -> str:
    """A one-line explanation of a Web API error with the fix, e.g. "not_in_channel: invite …"."""
    code = slack_error_code(error)
    fix = _FIXES.get(code, "see https://api.slack.com/methods for the error code")
    return f"{code}: {fix.format(channel=channel)}"


class TaggerHolder:
    """The warm tagger (index of every account name, a few seconds to build at 100k accounts).

    Listeners read `current` without locks; a rebuild happens on a background thread and swaps
    the reference in one assignment, so tagging never waits for it.
    """

    def __init__(
        self,
        build: Callable[[], Tagger],
        version: Callable[[], object],
        name_keys: Callable[[], dict[int, str]] | None = None,
    ) -> None:
        self._build = build
        self._build_keys = name_keys or dict
        self._version_of = version
        self._version = version()
        self.current = build()
        # Every account's name key, for fuzzy fit lookups without reading 100,000 rows per request;
        # indexed once so that a fuzzy lookup scores a shortlist, not every name.
        self.name_keys: NameKeys = NameKeys(self._build_keys())
        self._rebuilding = threading.Lock()
        _freeze_long_lived_objects()

    def refresh_soon(self) -> None:
        """Rebuild in the background (after a correction); at most one rebuild at a time."""
        threading.Thread(target=self.refresh, name="tagger-refresh", daemon=True).start()

    def refresh(self, *, only_if_changed: bool = False) -> bool:
        if not self._rebuilding.acquire(blocking=False):
            return False
        try:
            version = self._version_of()
            if only_if_changed and version == self._version:
                return False
            started = time.perf_counter()
            self.current = self._build()
            self.name_keys = NameKeys(self._build_keys())
            self._version = version
            _freeze_long_lived_objects()
            log.info("tagger rebuilt in %.1f s", time.perf_counter() - started)
            return True
        except Exception:
            log.exception("could not rebuild the tagger; the previous one stays in use")
            return False
        finally:
            self._rebuilding.release()


def _confirms(message: dict[str, Any], note_id: int, bot_user_id: str) -> bool:
    """Whether a thread message is the bot's confirmation of this note (its Change button)."""
    if message.get("user") != bot_user_id and not message.get("bot_id"):
        return False
    for block in message.get("blocks") or []:
        for element in block.get("elements") or [] if isinstance(block, dict) else []:
            if (
                isinstance(element, dict)
                and element.get("action_id") == surface.NOTE_CHANGE
                and element.get("value") == str(note_id)
            ):
                return True
    return False


def _freeze_long_lived_objects() -> None:
    """Move the warm indexes (about 1.5 million objects at 100,000 accounts) out of the garbage
    collector's sight. Without this, every few fuzzy lookups trigger a full collection that walks
    them all and stalls every request for 0.7-1.1 s (measured by bench/slack_fit.py)."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class CaptureChannels:
    """The configured capture channels as IDs: `#names` are looked up once, then cached."""

    RETRY_AFTER = 300.0  # seconds before unresolved names are looked up again

    def __init__(self, refs: list[str], client: WebClient) -> None:
        self._ids = {r for r in refs if not r.startswith("#")}
        self._names = {r[1:].lower() for r in refs if r.startswith("#")}
        self._by_id: dict[str, str] = {}
        self._client = client
        self._lock = threading.Lock()
        self._looked_up_at: float | None = None

    def ids(self) -> frozenset[str]:
        with self._lock:
            due = self._looked_up_at is None or time.monotonic() - self._looked_up_at > self.RETRY_AFTER
            if self._names and due and not self._names <= set(self._by_id.values()):
                self._looked_up_at = time.monotonic()
                self._resolve()
            return frozenset(self._ids)

    def __contains__(self, channel: object) -> bool:
        return channel in self.ids()

    def name_of(self, channel: str) -> str:
        name = self._by_id.get(channel)
        return f"#{name}" if name else f"<#{channel}>"

    def _resolve(self) -> None:
        cursor = None
        try:
            while True:
                page = self._client.conversations_list(
                    types="public_channel,private_channel", exclude_archived=True, limit=1000, cursor=cursor
                )
                for channel in page.get("channels") or []:
                    self._by_id[str(channel["id"])] = str(channel.get("name", "")).lower()
                cursor = (page.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    break
        except SlackApiError as error:
            log.warning("could not look up capture channels by name: %s", explain_slack_error(error, "them"))
        for channel_id, name in self._by_id.items():
            if name in self._names:
                self._ids.add(channel_id)
        missing = self._names - set(self._by_id.values())
        if missing:
            log.warning(
                "capture channels not found: %s; check the names in icp.yml and invite the bot "
                "(private channels need /invite @icp-bot before it can see them)",
                ", ".join(f"#{n}" for n in sorted(missing)),
            )


@dataclass
class BotServices:
    """The listeners' dependencies."""

    ctx: AppContext
    client: WebClient
    tagger: TaggerHolder
    channels: CaptureChannels
    workspace_url: str  # from auth.test, for permalinks
    bot_user_id: str
    confirm_mode: str = "thread"
    allowed_bots: frozenset[str] = field(default_factory=frozenset)
    admins: AdminDirectory = field(default_factory=AdminDirectory.nobody)  # icp.yml `admins:`

    @property
    def team_id(self) -> str:
        return self.ctx.team_id

    def permalink(self, channel: str, ts: str, thread_ts: str | None = None) -> str:
        """Slack's permalink shape, built locally (no chat.getPermalink call per message)."""
        url = f"{self.workspace_url.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}"
        if thread_ts and thread_ts != ts:
            url += f"?thread_ts={thread_ts}&cid={channel}"
        return url

    # -- confirmations -------------------------------------------------------------------------

    def post_confirmation(self, note: NoteView, *, look_first: bool = False) -> None:
        """Post the confirmation this handler claimed; release the claim if Slack refuses.

        `look_first`: an earlier holder of the claim may have posted it (it died, or its call timed
        out after Slack took the message): a confirmation found in the thread is adopted instead.
        A call whose fate is unknown (a timeout, a dropped connection) keeps the claim and raises:
        the event is tried again once the claim is stale, and then looks first.
        """
        if look_first:
            found = self._posted_confirmation(note)
            if found is not None:
                log.info("the confirmation of message %s was posted before: adopted", note.ts)
                record_confirmation(self.ctx.session_factory, self.team_id, note.id, found)
                return
        try:
            ts = self._post_confirmation(note)
        except SlackApiError as error:
            if self.confirm_mode == "reaction" and error.response.get("error") == "already_reacted":
                record_confirmation(self.ctx.session_factory, self.team_id, note.id, "reaction")
                return
            record_confirmation(self.ctx.session_factory, self.team_id, note.id, None)
            log.warning(
                "could not confirm the note from %s: %s",
                self.channels.name_of(note.channel),
                explain_slack_error(error, self.channels.name_of(note.channel)),
            )
            return
        record_confirmation(self.ctx.session_factory, self.team_id, note.id, ts)

    def _posted_confirmation(self, note: NoteView) -> str | None:
        """The ts of this note's confirmation in its thread, if the bot posted one (thread mode)."""
        if self.confirm_mode != "thread":
            return None
        cursor = None
        try:
            for _ in range(10):  # a thread of up to 2,000 replies
                page = self.client.conversations_replies(
                    channel=note.channel, ts=note.thread_ts or note.ts, limit=200, cursor=cursor
                )
                for message in page.get("messages") or []:
                    if _confirms(message, note.id, self.bot_user_id):
                        return str(message["ts"])
                cursor = (page.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    return None
        except SlackApiError as error:  # cannot look: posting again is the lesser harm
            log.warning(
                "could not look for an earlier confirmation in %s: %s",
                self.channels.name_of(note.channel),
                explain_slack_error(error, self.channels.name_of(note.channel)),
            )
        return None

    def _post_confirmation(self, note: NoteView) -> str:
        if self.confirm_mode == "reaction":
            self.client.reactions_add(channel=note.channel, timestamp=note.ts, name="white_check_mark")
            return "reaction"
        message = confirmation_message(note)
        if self.confirm_mode == "ephemeral" and note.user:
            self.client.chat_postEphemeral(
                channel=note.channel, user=note.user, thread_ts=note.thread_ts, **message.as_kwargs()
            )
            return "ephemeral"
        sent = self.client.chat_postMessage(
            channel=note.channel,
            thread_ts=note.thread_ts or note.ts,
            unfurl_links=False,
            **message.as_kwargs(),
        )
        return str(sent["ts"])

    def update_confirmation(self, note: NoteView) -> None:
        """Show a re-tagged or corrected note in its confirmation (thread mode keeps a message)."""
        ts = note.confirmation_ts
        if not ts or ts in {"reaction", "ephemeral"}:
            return
        self._quietly(
            "update the confirmation",
            note.channel,
            lambda: self.client.chat_update(
                channel=note.channel, ts=ts, **confirmation_message(note).as_kwargs()
            ),
        )

    def withdraw_confirmation(self, note: NoteView) -> None:
        """Remove the confirmation of a retracted note (its message was deleted or edited away)."""
        ts = note.confirmation_ts
        if ts == "reaction" and note.retracted_reason != "deleted":  # a deleted message took it along
            self._quietly(
                "remove the reaction",
                note.channel,
                lambda: self.client.reactions_remove(
                    channel=note.channel, timestamp=note.ts, name="white_check_mark"
                ),
            )
        elif ts and ts != "ephemeral":
            self._quietly(
                "delete the confirmation",
                note.channel,
                lambda: self.client.chat_delete(channel=note.channel, ts=ts),
            )

    def _quietly(self, what: str, channel: str, call: Callable[[], Any]) -> None:
        try:
            call()
        except SlackApiError as error:
            if slack_error_code(error) in {"message_not_found", "no_reaction"}:
                return
            log.warning(
                "could not %s in %s: %s",
                what,
                self.channels.name_of(channel),
                explain_slack_error(error, self.channels.name_of(channel)),
            )
