"""The event inbox and channel cursors on SQLite and PostgreSQL: idempotent adds, exclusive
claims that go stale, forward-only cursors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from storage.inbox import ChannelCursorRepository, InboxRepository

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _event(event_id: str, team: str = "T1", user: str = "U1") -> dict[str, object]:
    return {
        "team_id": team,
        "event_id": event_id,
        "event_type": "message",
        "channel": "C1",
        "ts": "1700000000.000100",
        "user_id": user,
        "body": "{}",
    }


def test_a_retried_event_is_stored_once(session_factory: sessionmaker[Session]) -> None:
    with session_factory.begin() as session:
        assert InboxRepository(session).add([_event("Ev1"), _event("Ev2")]) == 2
    with session_factory.begin() as session:
        assert InboxRepository(session).add([_event("Ev1"), _event("Ev3")]) == 1
        assert InboxRepository(session).add([_event("Ev1", team="T2")]) == 1  # ids are per workspace
    with session_factory() as session:
        assert InboxRepository(session).counts() == {"pending": 4}


def test_a_claim_is_exclusive_until_it_goes_stale(session_factory: sessionmaker[Session]) -> None:
    with session_factory.begin() as session:
        InboxRepository(session).add([_event(f"Ev{i}") for i in range(5)])
    stale_before = T0 - timedelta(seconds=30)
    with session_factory.begin() as session:
        first = InboxRepository(session).claim_pending(T0, stale_before, limit=3)
        assert [e.event_id for e in first] == ["Ev0", "Ev1", "Ev2"]
        assert all(e.attempts == 1 for e in first)
    with session_factory.begin() as session:
        second = InboxRepository(session).claim_pending(T0, stale_before, limit=10)
        assert [e.event_id for e in second] == ["Ev3", "Ev4"]
        assert InboxRepository(session).claim_pending(T0, stale_before, limit=10) == []
        InboxRepository(session).finish(second[0].id, "done", T0)
    later = T0 + timedelta(seconds=31)  # the holder of the first claims died: they are free again
    with session_factory.begin() as session:
        again = InboxRepository(session).claim_pending(later, later - timedelta(seconds=30), limit=10)
        assert [e.event_id for e in again] == ["Ev0", "Ev1", "Ev2", "Ev4"]
        assert [e.attempts for e in again] == [2, 2, 2, 2]
        InboxRepository(session).release(again[0].id, "database gone")
    with session_factory() as session:
        repo = InboxRepository(session)
        assert repo.counts() == {"pending": 4, "done": 1}
        assert [e.event_id for e in repo.claim_pending(later, later - timedelta(seconds=30), limit=10)] == [
            "Ev0"
        ]


def test_processed_events_are_purged_and_deletable_per_user(session_factory: sessionmaker[Session]) -> None:
    with session_factory.begin() as session:
        repo = InboxRepository(session)
        repo.add(
            [_event("Ev1"), _event("Ev2", user="U2"), _event("Ev3", user="U2"), _event("Ev4", team="T2")]
        )
        claimed = repo.claim_pending(T0, T0, limit=10)
        repo.finish(claimed[0].id, "done", T0 - timedelta(days=2))
        repo.finish(claimed[1].id, "failed", T0, error="boom")
    with session_factory.begin() as session:
        repo = InboxRepository(session)
        assert repo.purge_processed(T0 - timedelta(days=1)) == 1  # Ev1; Ev2 is recent, Ev3 pending
        assert repo.delete_for_user("T1", "U2") == 2
        assert repo.delete_team("T2") == 1
        assert repo.counts() == {}


def test_a_cursor_only_moves_forward(session_factory: sessionmaker[Session]) -> None:
    with session_factory.begin() as session:
        cursors = ChannelCursorRepository(session, "T1")
        assert cursors.get("C1") is None
        cursors.advance("C1", "1700000000.000200")
        cursors.advance("C1", "1700000000.000100")  # an older message processed late
        cursors.advance("C2", "1700000001.000000")
        ChannelCursorRepository(session, "T2").advance("C1", "1800000000.000000")
    with session_factory.begin() as session:
        cursors = ChannelCursorRepository(session, "T1")
        assert cursors.all() == {"C1": "1700000000.000200", "C2": "1700000001.000000"}
        cursors.advance("C1", "1700000005.000000")
        assert cursors.get("C1") == "1700000005.000000"
        assert cursors.delete_team() == 2
    with session_factory() as session:
        assert ChannelCursorRepository(session, "T2").all() == {"C1": "1800000000.000000"}
