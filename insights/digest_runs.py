"""Exactly one digest per workspace, channel and period: runs are claimed before anything is sent.

A claim is a row in `digest_runs`, unique per team + channel + period start. Whoever inserts it
posts; everyone else (a second bot process, a restart, a manual `--post` at the same moment)
stands down. A run that ended in `error` may be claimed again (a later retry or `--post`); a run
stuck in `working` longer than STALE_AFTER (its process died mid-post) may be taken over, and the
taker first looks in the channel for a digest that did get through before posting again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from insights.digest import Period
from storage.repositories import DigestRunRepository, WorkspaceRepository

SessionFactory = sessionmaker[Session]
STALE_AFTER = timedelta(minutes=15)


@dataclass(frozen=True)
class RunClaim:
    claimed: bool
    run_id: int | None
    state: str  # the run's state as found: "new", "working", "posted", "error", "quiet"
    message_ts: str | None = None
    took_over: bool = False  # a stale `working` run: check whether its digest got through


@dataclass(frozen=True)
class RunView:
    channel: str
    period_start: str
    period_end: str
    state: str
    trigger: str
    attempts: int
    error: str | None
    message_ts: str | None
    claimed_at: datetime
    finished_at: datetime | None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def claim_digest_run(
    session_factory: SessionFactory,
    team_id: str,
    channel: str,
    period: Period,
    *,
    trigger: str,
    now: datetime,
) -> RunClaim:
    """Claim the digest of `period` for `channel`, or say who has it."""
    start, end = period.start.isoformat(), period.end.isoformat()
    with session_factory.begin() as session:
        WorkspaceRepository(session).get_or_create(team_id)
        repo = DigestRunRepository(session, team_id)
        values = {"channel": channel, "period_start": start, "period_end": end, "state": "working",
                  "trigger": trigger, "claimed_at": now}  # fmt: skip
        if repo.insert_if_absent(values):
            run = repo.get(channel, start)
            assert run is not None
            return RunClaim(True, run.id, "new")
        run = repo.get(channel, start)
        if run is None:  # pragma: no cover - deleted between the two statements
            return RunClaim(False, None, "unknown")
        stale = run.state == "working" and _aware(run.claimed_at) < now - STALE_AFTER
        if (run.state == "error" or stale) and repo.take_over(
            run.id, run.state, run.claimed_at, now, trigger
        ):
            return RunClaim(True, run.id, run.state, run.message_ts, took_over=stale)
        return RunClaim(False, run.id, run.state, run.message_ts)


def finish_digest_run(
    session_factory: SessionFactory,
    team_id: str,
    run_id: int,
    state: str,
    *,
    attempts: int,
    message_ts: str | None = None,
    error: str | None = None,
) -> None:
    """Record how a claimed run ended: posted | quiet | error (with the reason)."""
    with session_factory.begin() as session:
        DigestRunRepository(session, team_id).finish(
            run_id, state=state, attempts=attempts, message_ts=message_ts, error=error
        )


def recent_digest_runs(session_factory: SessionFactory, team_id: str, limit: int = 10) -> list[RunView]:
    with session_factory() as session:
        return [
            RunView(r.channel, r.period_start, r.period_end, r.state, r.trigger, r.attempts, r.error,
                    r.message_ts, _aware(r.claimed_at), _aware(r.finished_at) if r.finished_at else None)
            for r in DigestRunRepository(session, team_id).latest(limit)
        ]  # fmt: skip


def now_utc() -> datetime:
    return datetime.now(UTC)
