"""Commands by mention: "@icp-bot digest now" (admins), "digest preview" (admins), "help" / "settings".

`handle_admin_mention` is called first by the app_mention listener: it answers in the thread and
returns True when the mention was one of these commands, False otherwise (the mention is then
handled as before: captured in a capture channel, answered with a short hello elsewhere).
A digest posted by hand is announced in the thread for everyone; help, refusals and previews are
shown only to the person who asked.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.blocks import notice_message
from bot.digest_jobs import DigestPoster, PostResult
from bot.digest_view import digest_message
from bot.render import render
from bot.services import BotServices, explain_slack_error
from insights.digest_service import build_digest

log = logging.getLogger("icp_bot")

_COMMANDS = {
    "digest now": "post",
    "post digest": "post",
    "post the digest": "post",
    "digest preview": "preview",
    "preview digest": "preview",
    "preview the digest": "preview",
    "help": "help",
    "settings": "help",
    "admins": "help",
}
_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")
_SEEN_LIMIT = 500


class _Seen:
    """Mentions already answered in this process: Slack's retries of an app_mention get no second reply."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: OrderedDict[tuple[str, str], None] = OrderedDict()

    def first_time(self, channel: str, ts: str) -> bool:
        with self._lock:
            if (channel, ts) in self._keys:
                return False
            self._keys[(channel, ts)] = None
            while len(self._keys) > _SEEN_LIMIT:
                self._keys.popitem(last=False)
            return True


_SEEN = _Seen()


def admin_command(text: str, bot_user_id: str) -> str | None:
    """The command in "<@BOT> digest now" and the like ("post", "preview" or "help"), else None.

    The whole message must be the command (after the bot's mention), so an outcome that happens
    to mention the bot ("@icp-bot we lost Contoso, digest now pls") is never taken for one.
    """
    mentioned = [m.group(1) for m in _MENTION.finditer(text)]
    if bot_user_id not in mentioned:
        return None
    rest = _MENTION.sub(lambda m: " " if m.group(1) == bot_user_id else m.group(0), text)
    words = " ".join(rest.lower().replace("&amp;", "&").split()).strip(" .!?:,")
    return _COMMANDS.get(words)


def handle_admin_mention(
    event: dict[str, Any],
    services: BotServices,
    *,
    poster: DigestPoster | None = None,
    now: datetime | None = None,
) -> bool:
    """Answer "@icp-bot digest now / digest preview / help"; True when the mention was one of them."""
    command = admin_command(str(event.get("text") or ""), services.bot_user_id)
    channel, ts = str(event.get("channel") or ""), str(event.get("ts") or "")
    if command is None or not channel or not ts:
        return False
    if not _SEEN.first_time(channel, ts):
        return True
    thread_ts = str(event.get("thread_ts") or ts)
    user = str(event.get("user") or "")
    if command == "help":
        _reply(services, channel, thread_ts, help_text(services), private_to=user)
        return True
    if not services.admins.is_admin(user):
        log.info("%s asked for the digest (%s) by mention: refused, not an admin", user or "a bot", command)
        _reply(services, channel, thread_ts, _admins_only(services, user), private_to=user)
        return True
    when = now or datetime.now(UTC)
    if command == "preview":
        _preview(services, channel, thread_ts, user, when)
        return True
    if not services.ctx.config.digest.channel:
        _reply(services, channel, thread_ts, "The digest is off: set `digest.channel` in icp.yml first.")
        return True
    poster = poster or DigestPoster(services.ctx, services.client, trigger="manual")
    result = poster.post(as_of=when, trigger="manual")
    log.info("digest posted by hand by %s: %s", user, result.state)
    _reply(services, channel, thread_ts, _post_result_text(result, user))
    return True


def help_text(services: BotServices) -> str:
    config = services.ctx.config
    digest = config.digest
    return render(
        "admin_help.mrkdwn.j2",
        channels=[services.channels.name_of(c) for c in sorted(services.channels.ids())],
        icp_version=config.icp.version,
        digest_channel=digest.channel,
        digest_day=digest.day,
        digest_time=digest.time,
        digest_timezone=digest.timezone,
        admins=services.admins.mentions(),
        retention_months=config.retention.notes_months,
    )


def _admins_only(services: BotServices, user: str) -> str:
    admins = services.admins.mentions()
    who = f"<@{user}>, only" if user else "Only"
    if not admins:
        return (
            f"{who} an ICP admin can post the digest by hand, and none is set: an operator can name "
            "them under `admins:` in icp.yml, or run `icp-bot digest --post`."
        )
    return f"{who} an ICP admin can post the digest by hand ({', '.join(admins)})."


def _post_result_text(result: PostResult, user: str) -> str:
    week = f"the week of {result.period.start:%b} {result.period.start.day}" if result.period else "this week"
    where = f"<#{result.channel}>" if result.channel else "the digest channel"
    texts = {
        "posted": f"Posted the digest for {week} to {where}, as <@{user}> asked.",
        "recovered": f"The digest for {week} was already in {where}.",
        "already_posted": f"The digest for {week} was already posted to {where}; it posts once a week.",
        "in_progress": f"The digest for {week} is being posted right now.",
        "quiet": f"Nothing happened in {week} and the digest skips quiet weeks; nothing was posted.",
        "no_channel": "The digest is off: set `digest.channel` in icp.yml first.",
    }
    return texts.get(
        result.state, f"I could not post the digest for {week}: {result.error or 'unknown error'}."
    )


def _preview(services: BotServices, channel: str, thread_ts: str, user: str, when: datetime) -> None:
    """The digest as it would be posted now, shown only to the admin who asked."""
    digest = build_digest(services.ctx.session_factory, services.team_id, services.ctx.config, when)
    message = digest_message(digest)
    try:
        services.client.chat_postEphemeral(
            channel=channel, user=user, thread_ts=thread_ts, **message.as_kwargs()
        )
    except SlackApiError as error:
        log.warning("could not show a digest preview: %s", explain_slack_error(error, f"<#{channel}>"))


def _reply(
    services: BotServices, channel: str, thread_ts: str, text: str, *, private_to: str | None = None
) -> None:
    """Answer in the thread; `private_to` shows it to that person only (answers that list the
    admins would otherwise notify every one of them, and the whole admin user group)."""
    message = notice_message(text).as_kwargs()
    try:
        if private_to:
            services.client.chat_postEphemeral(
                channel=channel, user=private_to, thread_ts=thread_ts, **message
            )
        else:
            services.client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, unfurl_links=False, **message
            )
    except SlackApiError as error:
        log.warning("could not answer a mention: %s", explain_slack_error(error, f"<#{channel}>"))
