"""The event inbox and the channel history cursors.

The inbox is a queue across workspaces (one worker drains every workspace's events), so unlike
the repositories in storage.repositories it is not scoped to one team; each row carries its own.
Like them, it takes a Session and never commits.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.models import Base, ChannelCursor, InboxEvent, utcnow

INBOX_TABLE = Table("inbox_events", Base.metadata)
CURSORS_TABLE = Table("channel_cursors", Base.metadata)


def _insert(session: Session, table: Table) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(dialect)  # pragma: no cover - only SQLite and PostgreSQL are supported


class InboxRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, rows: Sequence[dict[str, Any]]) -> int:
        """Store events unless already there (a retry of a stored event); return how many were new."""
        if not rows:
            return 0
        now = utcnow()
        values = [{"state": "pending", "attempts": 0, "received_at": now, **row} for row in rows]
        statement = _insert(self.session, INBOX_TABLE).values(values).on_conflict_do_nothing()
        inserted = self.session.execute(statement.returning(INBOX_TABLE.c.id)).scalars().all()
        return len(inserted)

    def requeue_done(self, team_id: str, event_id: str) -> bool:
        """Process a done event again (Slack retried it: it never saw our ack). Harmless, because
        processing is idempotent, and it lets a confirmation that failed before be tried again."""
        result = self.session.execute(
            update(InboxEvent)
            .where(InboxEvent.team_id == team_id, InboxEvent.event_id == event_id, InboxEvent.state == "done")
            .values(state="pending", claimed_at=None)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    def claim_pending(
        self, now: datetime, stale_before: datetime, limit: int, exclude: Collection[int] = ()
    ) -> list[InboxEvent]:
        """Take up to `limit` pending events, oldest first, that nobody holds (or whose holder died).

        The claim is one conditional UPDATE, so two workers (two replicas) never both take a row
        while its claim is fresh.
        """
        free = or_(InboxEvent.claimed_at.is_(None), InboxEvent.claimed_at < stale_before)
        query = select(InboxEvent.id).where(InboxEvent.state == "pending", free)
        if exclude:  # events this process is working on (their claims are kept fresh)
            query = query.where(InboxEvent.id.not_in(list(exclude)))
        ids = self.session.scalars(query.order_by(InboxEvent.id).limit(limit)).all()
        if not ids:
            return []
        claimed = self.session.scalars(
            update(InboxEvent)
            .where(InboxEvent.id.in_(ids), InboxEvent.state == "pending", free)
            .values(claimed_at=now, attempts=InboxEvent.attempts + 1)
            .returning(InboxEvent.id)
            .execution_options(synchronize_session=False)
        ).all()
        if not claimed:
            return []
        rows = self.session.scalars(
            select(InboxEvent).where(InboxEvent.id.in_(claimed)).order_by(InboxEvent.id)
        )
        return list(rows)

    def finish(self, event_id: int, state: str, now: datetime, error: str | None = None) -> None:
        self.session.execute(
            update(InboxEvent)
            .where(InboxEvent.id == event_id)
            .values(state=state, processed_at=now, error=error)
            .execution_options(synchronize_session=False)
        )

    def finish_many(self, event_ids: Collection[int], state: str, now: datetime) -> None:
        """Mark several handled events at once (one statement)."""
        if event_ids:
            self.session.execute(
                update(InboxEvent)
                .where(InboxEvent.id.in_(list(event_ids)))
                .values(state=state, processed_at=now, error=None)
                .execution_options(synchronize_session=False)
            )

    def refresh_claims(self, event_ids: Collection[int], now: datetime) -> None:
        """Keep the claims of events still being worked on fresh, so no other worker takes them."""
        if not event_ids:
            return
        self.session.execute(
            update(InboxEvent)
            .where(InboxEvent.id.in_(list(event_ids)), InboxEvent.state == "pending")
            .values(claimed_at=now)
            .execution_options(synchronize_session=False)
        )

    def release(self, event_id: int, error: str) -> None:
        """Give a claimed event back (the database or Slack failed it); it is tried again later."""
        self.session.execute(
            update(InboxEvent)
            .where(InboxEvent.id == event_id)
            .values(claimed_at=None, error=error)
            .execution_options(synchronize_session=False)
        )

    def counts(self) -> dict[str, int]:
        rows = self.session.execute(select(InboxEvent.state, func.count()).group_by(InboxEvent.state))
        return {str(state): int(count) for state, count in rows}

    def purge_processed(self, before: datetime) -> int:
        """Delete done and failed events processed before `before` (they hold message text)."""
        result = self.session.execute(
            delete(InboxEvent).where(InboxEvent.state != "pending", InboxEvent.processed_at < before)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    def count_for_user(self, team_id: str, user_id: str) -> int:
        query = select(func.count()).select_from(InboxEvent)
        return int(
            self.session.scalar(query.where(InboxEvent.team_id == team_id, InboxEvent.user_id == user_id))
            or 0
        )

    def delete_for_user(self, team_id: str, user_id: str) -> int:
        """A person's events still in the inbox (a privacy request must not wait for the purge)."""
        result = self.session.execute(
            delete(InboxEvent).where(InboxEvent.team_id == team_id, InboxEvent.user_id == user_id)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    def delete_team(self, team_id: str) -> int:
        result = self.session.execute(delete(InboxEvent).where(InboxEvent.team_id == team_id))
        return int(getattr(result, "rowcount", 0) or 0)


class ChannelCursorRepository:
    """Per workspace: the newest message ts seen in each capture channel."""

    def __init__(self, session: Session, team_id: str) -> None:
        self.session = session
        self.team_id = team_id

    def get(self, channel: str) -> str | None:
        return self.session.scalar(
            select(ChannelCursor.last_ts).where(
                ChannelCursor.team_id == self.team_id, ChannelCursor.channel == channel
            )
        )

    def all(self) -> dict[str, str]:
        rows = self.session.execute(
            select(ChannelCursor.channel, ChannelCursor.last_ts).where(ChannelCursor.team_id == self.team_id)
        )
        return {str(channel): str(ts) for channel, ts in rows}

    def advance(self, channel: str, ts: str) -> None:
        """Move the cursor forward to `ts`; never back (Slack ts strings compare in time order)."""
        now = utcnow()
        insert = _insert(self.session, CURSORS_TABLE).values(
            team_id=self.team_id, channel=channel, last_ts=ts, updated_at=now
        )
        statement = insert.on_conflict_do_update(
            index_elements=[CURSORS_TABLE.c.team_id, CURSORS_TABLE.c.channel],
            set_={"last_ts": insert.excluded.last_ts, "updated_at": insert.excluded.updated_at},
            where=CURSORS_TABLE.c.last_ts < insert.excluded.last_ts,
        )
        self.session.execute(statement)

    def delete_team(self) -> int:
        result = self.session.execute(delete(ChannelCursor).where(ChannelCursor.team_id == self.team_id))
        return int(getattr(result, "rowcount", 0) or 0)
