"""Durable capture: every Slack event is stored before Slack gets its acknowledgement.

    inbox = EventInbox(session_factory, handle)     # handle(body) routes one event to its use case
    inbox.accept(body)                               # on the request thread, before the 200/ack
    inbox.start()                                    # a worker drains what is pending, in order

A process killed at any moment loses nothing Slack was told it received: the event is either in
`inbox_events` (pending, so the next start or another replica processes it) or was never
acknowledged (so Slack retries it). Processing is idempotent (one note per workspace + channel +
ts, confirmations claimed atomically), so an event processed twice — a crash after the work but
before the row was marked done — changes nothing the second time.

When the database cannot take the event, it waits in a bounded in-memory spool and the ack is
still sent; the worker writes the spool once the database is back. What a crash loses from the
spool during an outage, the channel history catch-up finds again.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from insights.errors import RetryLater
from storage.inbox import ChannelCursorRepository, InboxRepository
from storage.models import utcnow

log = logging.getLogger("icp_bot.inbox")

BATCH = 100  # events claimed per transaction
STALE_CLAIM = timedelta(seconds=30)  # a claim this old belongs to a worker that died
MAX_ATTEMPTS = 5  # then the event is marked failed and logged with its error
KEEP_PROCESSED = timedelta(days=1)  # processed events hold message text: kept only a day
SPOOL_LIMIT = 50_000  # events held in memory while the database is unavailable
LANES = 4  # channels processed side by side
MAX_IN_FLIGHT = 2 * BATCH  # claimed and not yet settled: the worker claims no more until lanes catch up
HEARTBEAT = 10.0  # seconds between refreshes of the claims this process holds (well inside STALE_CLAIM)
DEFERRED = "deferred"  # an event left claimed on purpose (RetryLater)
SETTLE_BATCH = 25  # handled events marked done in one transaction
CLAIM_PAUSE = 0.02  # seconds between claims while lanes are busy (fewer, fuller claim transactions)
IDLE_POLL = 1.0  # seconds between looks at the table when nothing woke the worker
# Message subtypes whose ts is a message in the channel (what the history cursor follows).
_CURSOR_SUBTYPES = frozenset({None, "bot_message", "thread_broadcast", "file_share"})


@dataclass(frozen=True)
class EventRow:
    """What the inbox stores of one event_callback body, and what it indexes."""

    team_id: str
    event_id: str
    event_type: str
    channel: str | None
    ts: str | None
    user_id: str | None
    body: str

    def as_row(self) -> dict[str, Any]:
        return {
            "team_id": self.team_id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "channel": self.channel,
            "ts": self.ts,
            "user_id": self.user_id,
            "body": self.body,
        }


def is_outage(exc: DBAPIError) -> bool:
    """Whether a database error means "unavailable" (connection lost, server down, timeout), as
    opposed to one event's data being refused (a DataError, an IntegrityError): the first waits
    for the database, the second fails that event alone."""
    return isinstance(exc, OperationalError | InterfaceError) or bool(exc.connection_invalidated)


def _text(value: object, limit: int) -> str | None:
    """An indexed field as stored: a string, cut to its column, without NUL (PostgreSQL refuses
    it in text; the body keeps it, escaped by JSON)."""
    if not isinstance(value, str):
        return None
    return value.replace("\x00", "")[:limit] or None


def event_row(body: Mapping[str, Any]) -> EventRow | None:
    """The row for an `event_callback` body; None for anything else (url_verification, junk)."""
    if body.get("type") != "event_callback" or not isinstance(body.get("event"), dict):
        return None
    event: dict[str, Any] = body["event"]
    team = body.get("team_id")
    if not isinstance(team, str) or not team:
        authorizations = body.get("authorizations")
        first = authorizations[0] if isinstance(authorizations, list) and authorizations else {}
        team = first.get("team_id") if isinstance(first, dict) else None
    team, event_id, kind = _text(team, 32), _text(body.get("event_id"), 64), _text(event.get("type"), 64)
    if team is None or event_id is None:
        return None
    if kind is None:  # Bolt answers 404 to an event it cannot route
        return None
    subtype = event.get("subtype")
    message: dict[str, Any] = event["message"] if isinstance(event.get("message"), dict) else {}
    if kind == "message" and isinstance(subtype, str):
        kind = _text(f"message.{subtype}", 64) or kind
    ts = event.get("deleted_ts") or message.get("ts") or event.get("ts")
    user = event.get("user") or message.get("user") or event.get("bot_id")
    return EventRow(
        team_id=team,
        event_id=event_id,
        event_type=kind[:64],
        channel=_text(event.get("channel"), 32),
        ts=_text(ts, 32),
        user_id=_text(user, 32),
        body=json.dumps(body, ensure_ascii=False, separators=(",", ":")),
    )


@dataclass(frozen=True)
class _Claimed:
    id: int
    team_id: str
    body: str
    attempts: int
    event_type: str
    channel: str | None
    ts: str | None


_LaneKey = tuple[str, str | None]  # workspace, channel


def _advances_cursor(event_type: str, channel: str | None, ts: str | None) -> bool:
    """A new message in a channel (not an edit or a delete, which carry an older message's ts)."""
    if not channel or not ts:
        return False
    if event_type == "message":
        return True
    return event_type.startswith("message.") and event_type[8:] in _CURSOR_SUBTYPES


class EventInbox:
    """Accepts events on the request thread and processes them on one worker thread, in order."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        handle: Callable[[dict[str, Any]], None],
        *,
        on_database_back: Callable[[], None] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._session_factory = session_factory
        self._handle = handle
        self._on_database_back = on_database_back
        self._clock = clock
        self._spool: collections.deque[EventRow] = collections.deque()
        self._spool_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._database_down_since: float | None = None
        self._lanes = ThreadPoolExecutor(max_workers=LANES, thread_name_prefix="event-lane")
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # notified when a lane runs out of work
        self._queues: dict[_LaneKey, collections.deque[_Claimed]] = {}  # one per lane
        self._in_flight: set[int] = set()  # claimed by this process and not settled yet
        self._outage: DBAPIError | None = None  # a database outage a lane met
        self.dropped = 0  # events refused because the spool was full (Slack retries those)

    # -- the request thread ---------------------------------------------------------------------

    def accept(self, body: Mapping[str, Any], *, retry: bool = False) -> bool:
        """Store an event before it is acknowledged. False when it cannot be kept (not an event,
        or the database is down and the spool is full): the caller then lets Slack retry it.

        `retry`: Slack says it is delivering the event again (it saw no ack); an event already
        processed is then processed once more, which is idempotent and retries a failed confirmation.
        """
        row = event_row(body)
        if row is None:
            return False
        try:
            with self._session_factory.begin() as session:
                inbox = InboxRepository(session)
                if not inbox.add([row.as_row()]) and retry:
                    inbox.requeue_done(row.team_id, row.event_id)
        except DBAPIError as exc:
            if is_outage(exc):
                return self._spool_while_down(row, exc)
            log.error("event %s could not be stored: %s", row.event_id, type(exc.orig or exc).__name__)
            return False
        self._wake.set()
        return True

    def _spool_while_down(self, row: EventRow, exc: DBAPIError) -> bool:
        with self._spool_lock:
            if len(self._spool) >= SPOOL_LIMIT:
                self.dropped += 1
                return False
            self._spool.append(row)
            first = self._database_down_since is None
            if first:
                self._database_down_since = time.monotonic()
        if first:
            log.warning(
                "the database is unavailable (%s): holding events in memory until it is back",
                type(exc.orig or exc).__name__,
            )
        self._wake.set()
        return True

    @property
    def spooled(self) -> int:
        return len(self._spool)

    # -- the worker -----------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="event-inbox", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._lanes.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        backoff = IDLE_POLL
        beat = time.monotonic()
        while not self._stop.is_set():
            try:
                if time.monotonic() - beat >= HEARTBEAT:
                    beat = time.monotonic()
                    self.refresh_claims()
                busy = self.process_pending(wait=False) if self.in_flight < MAX_IN_FLIGHT else 0
                backoff = IDLE_POLL
                if 0 < busy < BATCH and self.in_flight:  # lanes are busy: let the next claim fill up
                    self._stop.wait(CLAIM_PAUSE)
            except DBAPIError as exc:
                self._note_database_down(exc)
                busy = 0
                backoff = min(backoff * 2, 10.0)
            except Exception:  # a bug must not stop capture: log it, keep the worker alive
                log.exception("the event worker failed; it goes on")
                busy = 0
            if not busy:
                self._wake.wait(backoff)
                self._wake.clear()

    def _note_database_down(self, exc: DBAPIError) -> None:
        if self._database_down_since is None:
            self._database_down_since = time.monotonic()
            log.warning("the database is unavailable (%s): events wait", type(exc.orig or exc).__name__)

    def _database_is_back(self) -> None:
        if self._database_down_since is None:
            return
        down = time.monotonic() - self._database_down_since
        self._database_down_since = None
        log.info("the database is back after %.0f s; processing what waited", down)
        if self._on_database_back is not None:
            try:
                self._on_database_back()
            except Exception:
                log.exception("catching up after the database outage failed")

    def flush_spool(self) -> int:
        """Write the events held during an outage to the inbox (raises while it is still down)."""
        with self._spool_lock:
            rows = list(self._spool)
        if not rows:
            return 0
        try:
            with self._session_factory.begin() as session:
                InboxRepository(session).add([row.as_row() for row in rows])
        except DBAPIError as exc:
            if is_outage(exc):
                raise
            self._store_one_by_one(rows)  # one row the database refuses must not hold up the rest
        with self._spool_lock:
            for _ in rows:
                self._spool.popleft()
        return len(rows)

    def _store_one_by_one(self, rows: list[EventRow]) -> None:
        for row in rows:
            try:
                with self._session_factory.begin() as session:
                    InboxRepository(session).add([row.as_row()])
            except DBAPIError as exc:
                if is_outage(exc):
                    raise
                log.error("event %s could not be stored: %s", row.event_id, type(exc.orig or exc).__name__)

    def process_pending(self, limit: int = BATCH, *, wait: bool = True) -> int:
        """Claim a batch of pending events and hand them to their lanes; return how many were taken.

        Events of one channel run in order on one lane; different channels run side by side, and
        the worker claims the next batch while a lane is still busy, so a slow Slack call (a 429 or
        a timeout in one channel) does not hold up capture anywhere else. `wait` (the demo, tests
        and `drain`): return only once every lane is idle, raising a database outage a lane met.
        """
        flushed = self.flush_spool()
        now = self._clock()
        with self._lock:
            busy = set(self._in_flight)
        with self._session_factory.begin() as session:
            claimed = [
                _Claimed(e.id, e.team_id, e.body, e.attempts, e.event_type, e.channel, e.ts)
                for e in InboxRepository(session).claim_pending(now, now - STALE_CLAIM, limit, busy)
            ]
        if flushed or claimed:
            self._database_is_back()
        lanes: dict[_LaneKey, list[_Claimed]] = {}
        for event in claimed:  # one lane per channel: its messages are handled in order
            lanes.setdefault((event.team_id, event.channel), []).append(event)
        for key, events in lanes.items():
            self._dispatch(key, events)
        if wait:
            self.wait_idle()
        outage, self._outage = self._outage, None
        if outage is not None:
            raise outage
        return len(claimed)

    @property
    def in_flight(self) -> int:
        with self._lock:
            return len(self._in_flight)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no lane has work; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._queues, timeout)

    def _dispatch(self, key: _LaneKey, events: list[_Claimed]) -> None:
        with self._lock:
            self._in_flight.update(e.id for e in events)
            queue = self._queues.get(key)
            start = queue is None
            if queue is None:
                queue = self._queues[key] = collections.deque()
            queue.extend(events)
        if start:
            self._lanes.submit(self._run_lane, key)

    def _run_lane(self, key: _LaneKey) -> None:
        """Work through one lane's queue; what was handled is settled in batches (one commit for up
        to SETTLE_BATCH events), and always before the lane retires."""
        handled: list[tuple[_Claimed, str | None]] = []
        while True:
            with self._lock:
                queue = self._queues[key]
                event = queue.popleft() if queue else None
                if event is None and not handled:
                    del self._queues[key]
                    self._idle.notify_all()
                    self._wake.set()
                    return
            try:
                if event is not None:
                    handled.append((event, self._process(event)))
                if handled and (event is None or len(handled) >= SETTLE_BATCH):
                    self._settle(handled)
                    self._wake.set()
                    self._let_go(e for e, _ in handled)
                    handled = []
            except DBAPIError as exc:
                # The database went away: what this lane holds stays claimed in the table and is
                # taken again once the claims are stale (handling twice changes nothing).
                with self._lock:
                    held = [*self._queues[key], *(e for e, _ in handled)]
                    self._queues[key].clear()
                self._let_go(held + ([event] if event is not None else []))
                handled = []
                self._outage = exc
            except Exception:  # a bug must not stop the lane: log it, the claims go stale
                log.exception("events of lane %s could not be settled", key[1])
                self._let_go([*(e for e, _ in handled), *([event] if event is not None else [])])
                handled = []

    def _let_go(self, events: Iterable[_Claimed]) -> None:
        with self._lock:
            self._in_flight.difference_update(e.id for e in events)

    def _process(self, event: _Claimed) -> str | None:
        """Handle one event: None when done, the error when it failed, DEFERRED to leave it claimed."""
        try:
            self._handle(json.loads(event.body))
        except DBAPIError as exc:
            if is_outage(exc):
                raise
            failure: BaseException = exc.orig or exc
        except RetryLater as exc:
            # Left claimed: taken again once the claim is stale, like a dead worker's event.
            log.info("event %s (%s) deferred: %s", event.id, event.event_type, exc)
            return DEFERRED
        except Exception as exc:
            failure = exc
        else:
            return None
        log.warning(
            "event %s (%s) failed on attempt %d", event.id, event.event_type, event.attempts, exc_info=failure
        )
        return f"{type(failure).__name__}: {failure}"[:500]

    def _settle(self, handled: list[tuple[_Claimed, str | None]]) -> None:
        """Mark events done, give back those that failed, and move the channels' history cursors,
        in one transaction."""
        now = self._clock()
        done = [event for event, outcome in handled if outcome is None]
        cursors: dict[tuple[str, str], str] = {}
        for event in done:
            if _advances_cursor(event.event_type, event.channel, event.ts):
                key = (event.team_id, str(event.channel))
                cursors[key] = max(cursors.get(key, ""), str(event.ts))
        with self._session_factory.begin() as session:
            inbox = InboxRepository(session)
            inbox.finish_many([e.id for e in done], "done", now)
            for event, outcome in handled:
                if outcome is None or outcome == DEFERRED:
                    continue
                if event.attempts >= MAX_ATTEMPTS:
                    log.error(
                        "event %s failed %d times and is set aside: %s", event.id, event.attempts, outcome
                    )
                    inbox.finish(event.id, "failed", now, error=outcome)
                else:
                    inbox.release(event.id, outcome)
            for (team, channel), ts in cursors.items():
                ChannelCursorRepository(session, team).advance(channel, ts)

    def refresh_claims(self) -> None:
        """Keep the claims of the events this process holds fresh (a slow lane keeps its events)."""
        with self._lock:
            held = set(self._in_flight)
        if held:
            with self._session_factory.begin() as session:
                InboxRepository(session).refresh_claims(held, self._clock())

    def drain(self, max_batches: int = 1000) -> int:
        """Process until nothing is pending (the demo and in-process tests; no worker thread)."""
        total = 0
        for _ in range(max_batches):
            taken = self.process_pending()
            total += taken
            if not taken:
                break
        return total

    def purge(self) -> int:
        """Delete events processed more than a day ago (they hold message text)."""
        with self._session_factory.begin() as session:
            return InboxRepository(session).purge_processed(self._clock() - KEEP_PROCESSED)

    def counts(self) -> dict[str, int]:
        with self._session_factory() as session:
            counts = InboxRepository(session).counts()
        return counts | {"spooled": self.spooled}
