"""Posting the weekly digest: on schedule (APScheduler, jobs kept in the product's database) or by
`icp-bot digest --post`, exactly once per period and channel.

The order of things: claim the run in the database, build the digest, post the message, upload
the chart into its thread, record the run as posted. Transient failures (rate limits beyond the
client's own retries, Slack errors, network) are retried with backoff; what still fails is
recorded as `error` with the reason, logged with the fix and told to the configured admin by DM.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.error import URLError
from zoneinfo import ZoneInfo

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.chart import digest_chart_png
from bot.context import AppContext
from bot.digest_view import digest_message
from bot.services import explain_slack_error, slack_error_code
from insights.config import DigestSettings
from insights.digest import Digest, Period, digest_period
from insights.digest_runs import claim_digest_run, finish_digest_run
from insights.digest_service import build_digest

log = logging.getLogger("icp_bot")

JOB_ID = "weekly-digest:{team}"
MARKER = "icp-digest-{start}"  # block_id of the digest's first block: finds a digest already posted
# Errors a retry cannot fix: a person has to act (the explanation says what to do).
PERMANENT = frozenset({
    "not_in_channel", "channel_not_found", "is_archived", "invalid_auth", "account_inactive",
    "token_revoked", "missing_scope", "not_allowed_token_type", "invalid_blocks", "msg_too_long",
    "restricted_action", "no_permission",
})  # fmt: skip


@dataclass(frozen=True)
class PostResult:
    state: str  # posted | recovered | already_posted | in_progress | quiet | error | no_channel
    period: Period | None
    channel: str | None
    message_ts: str | None = None
    error: str | None = None
    attempts: int = 0
    chart_uploaded: bool = False


@dataclass
class DigestPoster:
    """Posts the digest of one workspace; shared by the scheduler and the CLI."""

    ctx: AppContext
    client: WebClient
    backoff: Sequence[float] = (2.0, 10.0, 30.0)
    sleep: Callable[[float], None] = time.sleep
    trigger: str = "schedule"
    on_built: Callable[[Digest], None] | None = field(default=None, repr=False)

    @property
    def settings(self) -> DigestSettings:
        return self.ctx.config.digest

    def post(self, *, as_of: datetime, trigger: str | None = None) -> PostResult:
        channel = self.settings.channel
        if not channel:
            return PostResult("no_channel", None, None, error="digest.channel is not set in icp.yml")
        period = digest_period(as_of, self.settings.timezone)
        claim = claim_digest_run(
            self.ctx.session_factory,
            self.ctx.team_id,
            channel,
            period,
            trigger=trigger or self.trigger,
            now=datetime.now(UTC),
        )
        if not claim.claimed:
            state = {"posted": "already_posted", "quiet": "quiet", "working": "in_progress"}.get(
                claim.state, claim.state
            )
            return PostResult(state, period, channel, claim.message_ts)
        assert claim.run_id is not None
        if claim.took_over:  # its process died mid-post: did the digest get through?
            found = self._find_posted(channel, period)
            if found:
                self._finish(claim.run_id, "posted", 0, message_ts=found)
                return PostResult("recovered", period, channel, found)
        try:
            digest = build_digest(self.ctx.session_factory, self.ctx.team_id, self.ctx.config, as_of)
        except Exception as exc:
            self._finish(
                claim.run_id, "error", 0, error=f"could not build the digest: {type(exc).__name__}: {exc}"
            )
            raise
        if self.on_built is not None:
            self.on_built(digest)
        if digest.quiet and self.settings.quiet_week == "skip":
            self._finish(claim.run_id, "quiet", 0)
            return PostResult("quiet", period, channel)
        return self._send(claim.run_id, channel, period, digest)

    # -- sending -------------------------------------------------------------------------------

    def _send(self, run_id: int, channel: str, period: Period, digest: Digest) -> PostResult:
        chart_note = (
            None
            if digest.quiet
            else "The chart (win rate inside vs outside the ICP, outcomes by tier) is in the thread."
        )
        message = digest_message(digest, chart_note=chart_note)
        blocks: list[dict[str, Any]] = [dict(b) for b in message.blocks]
        if blocks:
            blocks[0]["block_id"] = MARKER.format(start=period.start.isoformat())
        chart = None if digest.quiet else digest_chart_png(digest)
        ts: str | None = None
        uploaded = False
        attempts = 0
        error: str | None = None
        for delay in (*self.backoff, None):
            attempts += 1
            try:
                if ts is None:
                    sent = self.client.chat_postMessage(
                        channel=channel,
                        text=message.text,
                        blocks=blocks,
                        unfurl_links=False,
                        unfurl_media=False,
                    )
                    ts = str(sent["ts"])
                if chart is not None and not uploaded:
                    self.client.files_upload_v2(
                        channel=channel,
                        thread_ts=ts,
                        file=chart,
                        filename=f"icp-digest-{period.start.isoformat()}.png",
                        title=f"ICP digest, week of {period.start:%b} {period.start.day}",
                    )
                    uploaded = True
                error = None
                break
            except SlackApiError as exc:
                error = explain_slack_error(exc, f"<#{channel}>")
                if slack_error_code(exc) in PERMANENT:
                    break
            except (URLError, OSError, TimeoutError) as exc:
                error = f"cannot reach Slack: {getattr(exc, 'reason', exc)}"
            if delay is not None:
                log.warning(
                    "digest for %s: attempt %d failed (%s); retrying in %.0f s",
                    period.start,
                    attempts,
                    error,
                    delay,
                )
                self.sleep(delay)
        if ts is not None:  # the message is there; a chart that would not upload is not worth a second post
            if error:
                log.warning("digest for %s posted without its chart: %s", period.start, error)
            self._finish(run_id, "posted", attempts, message_ts=ts, error=error)
            return PostResult("posted", period, channel, ts, error, attempts, uploaded)
        self._finish(run_id, "error", attempts, error=error)
        log.error("digest for the week of %s could not be posted to %s: %s", period.start, channel, error)
        self._tell_admin(period, channel, error or "unknown error")
        return PostResult("error", period, channel, None, error, attempts)

    def _finish(self, run_id: int, state: str, attempts: int, **values: Any) -> None:
        finish_digest_run(
            self.ctx.session_factory, self.ctx.team_id, run_id, state, attempts=attempts, **values
        )

    def _find_posted(self, channel: str, period: Period) -> str | None:
        marker = MARKER.format(start=period.start.isoformat())
        try:
            history = self.client.conversations_history(channel=channel, limit=100)
        except SlackApiError as exc:
            log.warning(
                "could not check %s for an earlier digest: %s", channel, explain_slack_error(exc, channel)
            )
            return None
        for message in history.get("messages") or []:
            if any(block.get("block_id") == marker for block in message.get("blocks") or []):
                return str(message.get("ts"))
        return None

    def _tell_admin(self, period: Period, channel: str, error: str) -> None:
        admin = self.settings.admin
        if not admin:
            return
        text = (
            f"The ICP digest for the week of {period.start:%b} {period.start.day} could not be posted to "
            f"<#{channel}>: {error}. Fix it, then run `icp-bot digest --post` (it posts once)."
        )
        try:
            self.client.chat_postMessage(channel=admin, text=text)
        except (SlackApiError, URLError, OSError) as exc:
            log.error("could not tell the admin %s either: %s", admin, exc)


# ---------------------------------------------------------------------------------------------
# Schedule


def digest_trigger(settings: DigestSettings) -> CronTrigger:
    """The weekly trigger in the configured timezone (09:00 local stays 09:00 across DST)."""
    return CronTrigger(
        day_of_week=settings.day[:3],
        hour=settings.hour,
        minute=settings.minute,
        timezone=ZoneInfo(settings.timezone),
    )


def next_runs(settings: DigestSettings, now: datetime, count: int = 5) -> list[datetime]:
    """The next `count` digest times after `now`, aware, in the configured timezone."""
    trigger = digest_trigger(settings)
    runs: list[datetime] = []
    previous: datetime | None = None
    current = now
    while len(runs) < count:
        fire = trigger.get_next_fire_time(previous, current)
        if fire is None:  # pragma: no cover - a weekly cron always fires again
            break
        runs.append(fire)
        previous, current = fire, fire
    return runs


def last_run_at(settings: DigestSettings, now: datetime) -> datetime | None:
    """The most recent scheduled digest time at or before `now` (within the last eight days)."""
    runs = next_runs(settings, now - timedelta(days=8), count=3)
    due = [run for run in runs if run <= now]
    return due[-1] if due else None


_POSTERS: dict[str, DigestPoster] = {}


def scheduled_digest(team_id: str) -> None:
    """The scheduler's job (referenced by name, so it can live in a persistent job store).

    The period comes from the scheduled time, not the clock, so a late run (within the grace
    period) posts the digest it was due to post and never the next one.
    """
    poster = _POSTERS.get(team_id)
    if poster is None:
        log.warning("a digest for %s is due, but this process does not serve that workspace", team_id)
        return
    now = datetime.now(UTC)
    result = poster.post(as_of=last_run_at(poster.settings, now) or now, trigger="schedule")
    log.info("scheduled digest for %s: %s", result.period.start if result.period else "-", result.state)


def catch_up(poster: DigestPoster, now: datetime) -> PostResult | None:
    """At start: post the digest whose time passed while the bot was down, if still within the
    grace period. Harmless when it was posted: the claim finds the run and stands down."""
    settings = poster.settings
    due = last_run_at(settings, now)
    if not settings.channel or due is None or now - due > timedelta(hours=settings.grace_hours):
        return None
    result = poster.post(as_of=due, trigger="catch-up")
    if result.state in {"posted", "recovered", "error"}:
        log.info(
            "missed digest for the week of %s: %s",
            result.period.start if result.period else "-",
            result.state,
        )
    return result


def schedule_digest(scheduler: BaseScheduler, poster: DigestPoster) -> None:
    """Register the weekly job (replacing the stored one, so config changes take effect)."""
    team = poster.ctx.team_id
    _POSTERS[team] = poster
    settings = poster.settings
    if not settings.channel:
        log.info("no digest.channel in icp.yml: the weekly digest is off")
        return
    scheduler.add_job(
        "bot.digest_jobs:scheduled_digest",
        trigger=digest_trigger(settings),
        kwargs={"team_id": team},
        id=JOB_ID.format(team=team),
        name="weekly ICP digest",
        replace_existing=True,
        coalesce=True,
        max_instances=1,
        misfire_grace_time=max(1, int(settings.grace_hours * 3600)),
    )
