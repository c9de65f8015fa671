"""Use cases of history catch-up: the channel cursors, and which messages are already notes.

The cursor of a capture channel is the newest message ts the bot has seen there (live or read back
from history); catch-up after downtime starts from it. Slack ts strings ("1761900000.000100") have
ten digits before the point until the year 2286, so they compare in time order as strings.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from sqlalchemy.orm import Session, sessionmaker

from storage.inbox import ChannelCursorRepository
from storage.repositories import NoteRepository

SessionFactory = sessionmaker[Session]
_LOOKUP_CHUNK = 500  # ts values per IN (...) query: well under every database's parameter limit


def ts_of(moment: datetime) -> str:
    """A datetime as a Slack ts ("1761900000.000000")."""
    return f"{moment.timestamp():.6f}"


def ts_key(ts: str) -> Decimal:
    """A Slack ts as an exact number, for sorting and comparing (0 for a malformed one)."""
    try:
        return Decimal(ts)
    except (InvalidOperation, ValueError):
        return Decimal(0)


def ts_minus(ts: str, delta: timedelta) -> str:
    """`delta` earlier than `ts`, as a ts (never before the epoch)."""
    earlier = ts_key(ts) - Decimal(str(delta.total_seconds()))
    return f"{max(earlier, Decimal(0)):.6f}"


def ts_time(ts: str) -> datetime:
    return datetime.fromtimestamp(float(ts_key(ts)), UTC)


def channel_cursors(session_factory: SessionFactory, team_id: str) -> dict[str, str]:
    """The newest message ts seen per channel of the workspace."""
    with session_factory() as session:
        return ChannelCursorRepository(session, team_id).all()


def advance_cursor(session_factory: SessionFactory, team_id: str, channel: str, ts: str) -> None:
    """Move a channel's cursor forward to `ts` (never back: a later cursor stays)."""
    with session_factory.begin() as session:
        ChannelCursorRepository(session, team_id).advance(channel, ts)


def known_note_texts(
    session_factory: SessionFactory, team_id: str, channel: str, stamps: Iterable[str]
) -> dict[str, str]:
    """The stored text of each message in `stamps` that is a note already (retracted ones too)."""
    wanted = sorted(set(stamps))
    found: dict[str, str] = {}
    with session_factory() as session:
        notes = NoteRepository(session, team_id)
        for start in range(0, len(wanted), _LOOKUP_CHUNK):
            found.update(notes.texts_at(channel, wanted[start : start + _LOOKUP_CHUNK]))
    return found
