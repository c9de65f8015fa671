"""Catch-up after downtime, and backfill: read a capture channel's history back from Slack and
capture what live capture did not see, through the same path as a live message.

    catch_up = schedule_history_catch_up(scheduler, services)  # shortly after start, then every 10 min
    summary = catch_up.run()                    # at any time, e.g. when the database is back
    summary = catch_up_all(services)            # every capture channel, from its stored cursor to now
    summary = backfill(services, "C0DEALS", since=datetime(2026, 1, 1, tzinfo=UTC))

Slack returns conversations.history newest first and pages towards older messages, so a window is
read in full first and then processed oldest first, 200 messages at a time; the channel's cursor
moves forward after each processed batch, so a run that stops half-way resumes from there. A
message seen live and read again here is one note: storage is unique on workspace + channel + ts,
the confirmation is claimed atomically, and a message whose note already has its text is left
alone. A note whose message was edited while the bot was down takes the edit path.

Rate limits: conversations.history and conversations.replies are Tier 3 (about 50 calls a minute)
for apps a workspace builds for itself; Slack allows far less to apps distributed outside the
Marketplace. Calls are spaced by PAGE_PAUSE, a 429 is waited out (Retry-After) and counted, and a
run stops cleanly, with what it read processed and a logged summary, if Slack keeps refusing.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.error import URLError

from apscheduler.schedulers.background import BackgroundScheduler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from sqlalchemy.exc import DBAPIError

from bot.context import AppContext
from bot.listeners.events import CAPTURED_SUBTYPES, capturable_channel, incoming_message
from bot.services import BotServices, CaptureChannels, TaggerHolder, explain_slack_error, slack_error_code
from insights.capture import CaptureResult, capture_message, delete_message, edit_message
from insights.errors import UserError
from insights.history import advance_cursor, channel_cursors, known_note_texts, ts_key, ts_minus, ts_of
from insights.service import build_tagger, tagging_data_version

log = logging.getLogger("icp_bot")

PAGE_LIMIT = 200  # messages per page (Slack recommends at most 200); also the processing batch
PAGE_PAUSE = 1.2  # seconds between Web API calls of a run: Tier 3 allows about 50 a minute
RATE_LIMIT_RETRIES = 4  # 429s waited out per call before the run stops
CONFIRM_WITHIN = timedelta(hours=24)  # catch-up confirms only messages this recent
CATCH_UP_EVERY_MINUTES = 10
START_DELAY = timedelta(seconds=1)  # the first catch-up, once the app is serving
# At start, threads started this long before the cursor are checked for replies missed while down.
THREAD_LOOKBACK = timedelta(days=3)

Progress = Callable[[str, "HistorySummary"], None]  # (phase "read" | "processed", the summary so far)

# Kept from each history message: what capture and the author check read (not blocks, files...).
_KEPT = ("type", "subtype", "ts", "thread_ts", "text", "user", "bot_id", "username", "hidden",
         "reply_count", "latest_reply")  # fmt: skip


@dataclass
class HistorySummary:
    """What a history run did (per channel, or added up over a catch-up)."""

    channels: int = 0
    pages: int = 0  # Web API pages read (history and thread replies)
    messages: int = 0  # messages read
    captured: int = 0  # new notes
    known: int = 0  # notes already there with this text (captured live, or by an earlier run)
    updated: int = 0  # notes re-tagged because the message was edited while the bot was down
    retracted: int = 0  # notes whose message was edited into chatter or deleted while down
    confirmed: int = 0  # confirmations posted
    rate_limited_waits: int = 0  # 429 answers waited out
    started: int = 0  # channels seen for the first time: cursor set, nothing read
    processed: int = 0  # messages processed so far (progress)
    to_process: int = 0  # messages in the window (progress)
    stopped: list[str] = field(default_factory=list)  # why reading stopped early, one per channel
    marks: dict[str, str] = field(default_factory=dict)  # per channel read in full: the newest ts read
    skipped: bool = False  # another catch-up was running in this process

    @property
    def complete(self) -> bool:
        return not self.stopped and not self.skipped

    def add(self, other: HistorySummary) -> None:
        for name in ("channels", "pages", "messages", "captured", "known", "updated", "retracted",
                     "confirmed", "rate_limited_waits", "started", "processed", "to_process"):  # fmt: skip
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.stopped.extend(other.stopped)
        self.marks.update(other.marks)

    def line(self) -> str:
        parts = [
            f"{self.channels} channel{'s' * (self.channels != 1)}",
            f"{self.pages} page{'s' * (self.pages != 1)}",
            f"{self.messages} messages read",
            f"{self.captured} outcomes captured",
            f"{self.known} already known",
        ]
        parts += [
            f"{n} {label}" for n, label in ((self.updated, "updated"), (self.retracted, "retracted")) if n
        ]
        parts += [f"{self.confirmed} confirmed", f"{self.rate_limited_waits} rate-limited waits"]
        if self.started:
            parts.append(f"{self.started} new channel{'s' * (self.started != 1)} (cursor set, nothing read)")
        text = ", ".join(parts)
        if self.stopped:
            text += "; stopped early: " + "; ".join(self.stopped)
        return text


# ---------------------------------------------------------------------------------------------
# Reading


class HistoryReadStopped(Exception):
    """Slack refused, kept rate-limiting, or could not be reached: stop reading this channel."""


class _CountingRateLimitHandler(RateLimitErrorRetryHandler):
    """slack-sdk's 429 handler (sleeps Retry-After), telling each wait to the run's summary."""

    def __init__(self, max_retry_count: int, on_wait: Callable[[], None]) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self._on_wait = on_wait

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        self._on_wait()
        super().prepare_for_next_attempt(state=state, request=request, response=response, error=error)


class HistoryReader:
    """The Web API reads of one run: spaced by `pause`, 429s waited out and counted."""

    def __init__(
        self,
        client: WebClient,
        *,
        pause: float = PAGE_PAUSE,
        sleep: Callable[[float], None] = time.sleep,
        max_waits: int = RATE_LIMIT_RETRIES,
        stopping: threading.Event | None = None,
    ) -> None:
        self.summary = HistorySummary()  # the channel being read; swapped per channel
        # The same client, but with a 429 handler that counts (the other retry handlers stay).
        others = [h for h in client.retry_handlers if not isinstance(h, RateLimitErrorRetryHandler)]
        self.client = WebClient(
            token=client.token,
            base_url=client.base_url,
            timeout=client.timeout,
            ssl=client.ssl,
            proxy=client.proxy,
            headers=dict(client.headers),
            retry_handlers=[*others, _CountingRateLimitHandler(max_waits, self._waited)],
        )
        self._pause, self._sleep, self._calls = pause, sleep, 0
        self._stopping = stopping or threading.Event()

    @property
    def stop_requested(self) -> bool:
        return self._stopping.is_set()

    def _waited(self) -> None:
        self.summary.rate_limited_waits += 1

    def _spaced(self) -> None:
        if self._calls and self._pause > 0:
            self._sleep(self._pause)
        if self._stopping.is_set():
            raise HistoryReadStopped("the bot is stopping; the next start continues")
        self._calls += 1

    def _stop(self, error: Exception, channel: str) -> HistoryReadStopped:
        if isinstance(error, SlackApiError):
            if slack_error_code(error) == "ratelimited":
                return HistoryReadStopped(
                    f"{channel}: Slack kept rate-limiting conversations reads "
                    f"({self.summary.rate_limited_waits} waits); the next run continues"
                )
            return HistoryReadStopped(f"{channel}: {explain_slack_error(error, channel)}")
        return HistoryReadStopped(
            f"{channel}: cannot reach Slack's Web API ({getattr(error, 'reason', error)})"
        )

    def history(
        self, channel: str, name: str, oldest: str, latest: str | None
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of top-level messages in (oldest, latest), newest first."""
        cursor: str | None = None
        while True:
            self._spaced()
            try:
                page = self.client.conversations_history(
                    channel=channel, oldest=oldest, latest=latest, limit=PAGE_LIMIT, cursor=cursor
                )
            except (SlackApiError, URLError, OSError) as error:
                raise self._stop(error, name) from None
            self.summary.pages += 1
            messages = [m for m in page.get("messages") or [] if isinstance(m, dict) and m.get("ts")]
            yield messages
            cursor = str((page.get("response_metadata") or {}).get("next_cursor") or "") or None
            if not page.get("has_more"):
                return
            if cursor is None:  # Slack's older paging by time: continue below the oldest message seen
                if not messages:
                    return
                latest = min((str(m["ts"]) for m in messages), key=ts_key)

    def replies(
        self, channel: str, name: str, thread_ts: str, oldest: str, latest: str | None
    ) -> list[dict[str, Any]]:
        """The replies of one thread in (oldest, latest), without the parent; [] if it is gone."""
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            self._spaced()
            try:
                page = self.client.conversations_replies(
                    channel=channel,
                    ts=thread_ts,
                    oldest=oldest,
                    latest=latest,
                    limit=PAGE_LIMIT,
                    cursor=cursor,
                )
            except SlackApiError as error:
                if slack_error_code(error) == "thread_not_found":  # the parent was deleted meanwhile
                    return found
                raise self._stop(error, name) from None
            except (URLError, OSError) as error:
                raise self._stop(error, name) from None
            self.summary.pages += 1
            found += [
                m
                for m in page.get("messages") or []
                if isinstance(m, dict) and m.get("ts") and m.get("ts") != thread_ts
            ]
            cursor = str((page.get("response_metadata") or {}).get("next_cursor") or "") or None
            if not page.get("has_more") or cursor is None:
                return found


def _slim(message: dict[str, Any]) -> dict[str, Any]:
    kept = {k: message[k] for k in _KEPT if k in message}
    profile = message.get("bot_profile")
    if isinstance(profile, dict):
        kept["bot_profile"] = {k: profile[k] for k in ("name", "id", "app_id") if k in profile}
    return kept


# ---------------------------------------------------------------------------------------------
# Capturing


def _capture_one(
    services: BotServices,
    channel: str,
    message: dict[str, Any],
    known_text: str | None,
    *,
    confirm_after: datetime | None,
    summary: HistorySummary,
) -> None:
    """One message from history, as the live listeners would take it (bot.listeners.events)."""
    sf, team = services.ctx.session_factory, services.team_id
    if message.get("subtype") == "tombstone":  # a thread parent deleted while it has replies
        if known_text is not None:
            deleted = delete_message(sf, team, channel, str(message["ts"]))
            if deleted.action == "retracted" and deleted.note is not None:
                summary.retracted += 1
                services.withdraw_confirmation(deleted.note)
        return
    if message.get("subtype") not in CAPTURED_SUBTYPES:
        return
    if capturable_channel(services, {"channel": channel}, message) is None:
        return
    incoming = incoming_message(services, channel, message, None)
    tagger, icp = services.tagger.current, services.ctx.config.icp
    result: CaptureResult
    if known_text is None:
        result = capture_message(sf, team, incoming, tagger, icp)
        if result.action == "ignored":
            return
        if result.action == "created":
            summary.captured += 1
        else:
            summary.known += 1  # captured live a moment ago
    elif known_text == incoming.text:
        summary.known += 1
        return
    else:  # edited while the bot was down
        result = edit_message(sf, team, incoming, tagger, icp)
        if result.action == "unchanged" or result.note is None:
            summary.known += 1
            return
        if result.action == "retracted":
            summary.retracted += 1
            services.withdraw_confirmation(result.note)
            return
        summary.updated += 1
        if not result.confirm:
            services.update_confirmation(result.note)
            return
    name = services.channels.name_of(channel)
    log.info("message %s in %s, read from history: %s", incoming.ts, name, result.action)
    note = result.note
    if result.confirm and note is not None and confirm_after is not None and note.posted_at >= confirm_after:
        services.post_confirmation(note, look_first=result.confirm_again)
        summary.confirmed += 1
    # An older message is captured silently: its claim on the confirmation is simply never used.


def read_channel_history(
    services: BotServices,
    channel: str,
    *,
    since: str,
    latest: str | None = None,
    thread_lookback: timedelta = timedelta(0),
    confirm_after: datetime | None = None,
    advance: bool = True,
    reader: HistoryReader | None = None,
    progress: Progress | None = None,
) -> HistorySummary:
    """Capture the messages of `channel` posted after `since` (a ts, exclusive) and before `latest`
    (a ts, exclusive; None for now), thread replies included, oldest first.

    Replies are read for threads with a reply after `since` whose parent is in the window or at
    most `thread_lookback` older. Confirmations are posted for messages posted at or after
    `confirm_after` (None: none). With `advance`, the channel's cursor moves forward after each
    batch once the whole window was read. Never raises for Slack's refusals or rate limits: the
    summary's `stopped` says why reading stopped early. Database errors propagate.
    """
    reader = reader or HistoryReader(services.client)
    summary = reader.summary = HistorySummary(channels=1)
    name = services.channels.name_of(channel)
    oldest = ts_minus(since, thread_lookback) if thread_lookback else since
    top: dict[str, dict[str, Any]] = {}
    replies: dict[str, dict[str, Any]] = {}
    try:
        for page in reader.history(channel, name, oldest, latest):
            top.update((str(m["ts"]), _slim(m)) for m in page)
            summary.messages = len(top)
            if progress:
                progress("read", summary)
        threads = sorted(
            (
                m
                for m in top.values()
                if m.get("reply_count") and ts_key(str(m.get("latest_reply") or m["ts"])) > ts_key(since)
            ),
            key=lambda m: ts_key(str(m["ts"])),
        )
        for parent in threads:
            for reply in reader.replies(channel, name, str(parent["ts"]), since, latest):
                replies[str(reply["ts"])] = _slim(reply)
            summary.messages = len(top.keys() | replies.keys())
            if progress:
                progress("read", summary)
    except HistoryReadStopped as stopped:
        summary.stopped.append(str(stopped))
        log.info("history of %s: stopped reading: %s", name, stopped)  # the caller reports it
    window = sorted(
        (m for m in {**top, **replies}.values() if ts_key(str(m["ts"])) > ts_key(since)),
        key=lambda m: ts_key(str(m["ts"])),
    )
    summary.to_process = len(window)
    sf, team = services.ctx.session_factory, services.team_id
    for start in range(0, len(window), PAGE_LIMIT):
        if reader.stop_requested:
            summary.stopped.append("the bot is stopping; the next start continues")
            break
        batch = window[start : start + PAGE_LIMIT]
        known = known_note_texts(sf, team, channel, [str(m["ts"]) for m in batch])
        for message in batch:
            known_text = known.get(str(message["ts"]))
            _capture_one(services, channel, message, known_text, confirm_after=confirm_after, summary=summary)
        summary.processed += len(batch)
        if advance and not summary.stopped:  # a partial read has a gap below it: keep the cursor
            advance_cursor(sf, team, channel, str(batch[-1]["ts"]))
        if progress:
            progress("processed", summary)
    if not summary.stopped:
        summary.marks[channel] = str(window[-1]["ts"]) if window else since
    return summary


# ---------------------------------------------------------------------------------------------
# Catch-up after downtime

# One catch-up at a time per workspace in this process (start, schedule, after an outage).
_RUNNING: dict[str, threading.Lock] = {}
_RUNNING_GUARD = threading.Lock()


def _run_lock(team_id: str) -> threading.Lock:
    with _RUNNING_GUARD:
        return _RUNNING.setdefault(team_id, threading.Lock())


def catch_up_all(
    services: BotServices,
    *,
    starts: Mapping[str, str] | None = None,
    thread_lookback: timedelta = THREAD_LOOKBACK,
    pause: float = PAGE_PAUSE,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    stopping: threading.Event | None = None,
) -> HistorySummary:
    """Capture what every capture channel got after its cursor, up to now.

    `starts` are the points to start from per channel (see HistoryCatchUp); by default the stored
    cursors. A channel without one gets a cursor at this moment and nothing is read: a
    fresh install never confirms old messages. Confirmations are posted for messages of the last
    24 hours; older ones are captured silently. The summary's `marks` say where each channel was
    read up to. Never raises for Slack's answers; a database error stops the run (logged), and
    the next run starts over from the same points.
    """
    running = _run_lock(services.team_id)
    if not running.acquire(blocking=False):
        log.info("history catch-up: another run is in progress; skipped")
        return HistorySummary(skipped=True)
    total = HistorySummary()
    try:
        sf, team = services.ctx.session_factory, services.team_id
        points = dict(starts) if starts is not None else channel_cursors(sf, team)
        reader = HistoryReader(services.client, pause=pause, sleep=sleep, stopping=stopping)
        confirm_after = now() - CONFIRM_WITHIN
        for channel in sorted(services.channels.ids()):
            if reader.stop_requested:
                break
            since = points.get(channel)
            if since is None:
                total.add(_start_channel(services, channel, now()))
                continue
            summary = read_channel_history(
                services,
                channel,
                since=since,
                thread_lookback=thread_lookback,
                confirm_after=confirm_after,
                reader=reader,
            )
            total.add(summary)
    except DBAPIError as error:
        total.stopped.append(f"the database is unavailable ({type(error.orig or error).__name__})")
    finally:
        running.release()
    quiet = total.complete and not total.messages and not total.started
    level = logging.WARNING if total.stopped else logging.DEBUG if quiet else logging.INFO
    log.log(level, "history catch-up: %s", total.line())
    return total


def _start_channel(services: BotServices, channel: str, moment: datetime) -> HistorySummary:
    """A capture channel seen for the first time: its cursor starts now, and nothing is read
    (no Web API call: a fresh install costs Slack nothing). Live capture may have moved the
    cursor meanwhile; it only ever moves forward."""
    start = ts_of(moment)
    advance_cursor(services.ctx.session_factory, services.team_id, channel, start)
    return HistorySummary(channels=1, started=1, marks={channel: start})


class HistoryCatchUp:
    """The bot's catch-up: from where it last read each channel, not from the stored cursors.

    Live capture moves the stored cursor on every message, so an event Slack gave up delivering
    while the bot was running (the database was away, say) would sit below the cursor for good.
    This object keeps its own marks in memory: the cursors as they were before the app began
    serving (the downtime), then the newest message each run read. The stored cursors still move
    forward, for the next start.
    """

    def __init__(self, services: BotServices, starts: Mapping[str, str] | None) -> None:
        self.services = services
        self._marks: dict[str, str] | None = dict(starts) if starts is not None else None
        self._stopping = threading.Event()

    def stop(self) -> None:
        """Let a run in progress end at its next page or batch (at shutdown); no run starts after."""
        self._stopping.set()

    def run(self, *, thread_lookback: timedelta = timedelta(0), **options: Any) -> HistorySummary:
        """Catch up every capture channel now (a job of the scheduler, or after an outage).

        Never raises: an unexpected error is logged and the next run starts from the same marks.
        """
        try:
            summary = catch_up_all(
                self.services,
                starts=self._marks,
                thread_lookback=thread_lookback,
                stopping=self._stopping,
                **options,
            )
        except Exception:
            log.exception("history catch-up failed; the next run tries again")
            return HistorySummary(stopped=["unexpected error (logged)"])
        if not summary.skipped:
            if self._marks is None:  # the cursors could not be read at start: they are the marks now
                self._marks = {}
                with contextlib.suppress(DBAPIError):
                    self._marks.update(
                        channel_cursors(self.services.ctx.session_factory, self.services.team_id)
                    )
            self._marks.update(summary.marks)
        return summary

    def run_at_start(self) -> HistorySummary:
        """The first run: threads started a few days before the marks are checked for replies too."""
        return self.run(thread_lookback=THREAD_LOOKBACK)


def schedule_history_catch_up(
    scheduler: BackgroundScheduler,
    services: BotServices,
    *,
    every_minutes: int = CATCH_UP_EVERY_MINUTES,
    start_delay: timedelta = START_DELAY,
) -> HistoryCatchUp:
    """Catch up shortly after start, then every `every_minutes`. Call it before the app serves:
    the stored cursors are read now, before live messages move them.

    `scheduler` is the bot's BackgroundScheduler with a "process" MemoryJobStore (the jobs hold
    live objects and belong to this process); one pair of jobs per workspace. Returns the
    catch-up, whose `run()` may also be called at any time (when the database comes back after an
    outage, say).
    """
    try:
        starts: dict[str, str] | None = channel_cursors(services.ctx.session_factory, services.team_id)
    except DBAPIError:
        log.warning("could not read the channel cursors; the first catch-up reads them when it runs")
        starts = None
    catch_up = HistoryCatchUp(services, starts)
    scheduler.add_job(
        catch_up.run_at_start,
        "date",
        run_date=datetime.now(UTC) + start_delay,
        id=f"history-catch-up-start-{services.team_id}",
        jobstore="process",
        misfire_grace_time=None,  # the scheduler may start later than planned: run anyway
        replace_existing=True,
    )
    scheduler.add_job(
        catch_up.run,
        "interval",
        minutes=every_minutes,
        id=f"history-catch-up-{services.team_id}",
        jobstore="process",
        replace_existing=True,
    )
    return catch_up


# ---------------------------------------------------------------------------------------------
# Backfill (icp-bot backfill)


def cli_services(ctx: AppContext, client: WebClient) -> BotServices:
    """What capture needs outside the running bot: who the bot is, the tagger, the channels."""
    try:
        me = client.auth_test()
    except SlackApiError as error:
        raise UserError(
            f"Slack refused SLACK_BOT_TOKEN: {explain_slack_error(error, 'the channel')}"
        ) from None
    except (URLError, OSError) as error:
        raise UserError(
            f"cannot reach Slack's Web API at {client.base_url}: {getattr(error, 'reason', error)}; "
            "check the network or SLACK_API_URL"
        ) from None
    session_factory, team_id, capture = ctx.session_factory, ctx.team_id, ctx.config.capture
    tagger = TaggerHolder(
        lambda: build_tagger(session_factory, team_id, ctx.config.taxonomy),
        lambda: tagging_data_version(session_factory, team_id),
    )
    return BotServices(
        ctx=ctx,
        client=client,
        tagger=tagger,
        channels=CaptureChannels(list(capture.channels), client),
        workspace_url=str(me.get("url") or "https://slack.com/"),
        bot_user_id=str(me.get("user_id") or ""),
        confirm_mode=capture.confirm,
        allowed_bots=frozenset(b.lower() for b in capture.bots),
    )


def backfill(
    services: BotServices,
    channel: str,
    *,
    since: datetime,
    until: datetime | None = None,
    confirm: bool = False,
    progress: Progress | None = None,
    pause: float = PAGE_PAUSE,
    sleep: Callable[[float], None] = time.sleep,
) -> HistorySummary:
    """Capture a capture channel's messages posted from `since` up to `until` (exclusive; None: now).

    Idempotent: a second run finds every outcome known. Silent unless `confirm`. The channel's
    cursor moves forward only when the window starts at or before it (no gap is skipped).
    """
    if channel not in services.channels:
        raise UserError(
            f"{channel} is not a capture channel: add it to capture.channels in icp.yml first "
            "(the bot captures outcomes only there)"
        )
    since_ts = ts_minus(ts_of(since), timedelta(microseconds=1))  # `since` itself is included
    cursor = channel_cursors(services.ctx.session_factory, services.team_id).get(channel)
    return read_channel_history(
        services,
        channel,
        since=since_ts,
        latest=ts_of(until) if until is not None else None,
        confirm_after=datetime.min.replace(tzinfo=UTC) if confirm else None,
        advance=cursor is not None and ts_key(since_ts) <= ts_key(cursor),
        reader=HistoryReader(services.client, pause=pause, sleep=sleep),
        progress=progress,
    )
