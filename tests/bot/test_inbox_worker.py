"""The inbox worker with the real event handlers, in-process against the Slack stand-in.

The crash window these tests pin: a handler stored the note and claimed its confirmation, then the
process died before posting it. The event is processed again (its inbox claim went stale); the
confirmation claim is still fresh at that moment, so the event must wait for it to go stale too
rather than be marked done without a confirmation ever being posted.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from bot.inbox import STALE_CLAIM, EventInbox
from bot.listeners.events import handle_event_body
from bot.services import BotServices
from bot.standin import SlackStandIn
from bot.workspaces import Workspaces
from insights.capture import CONFIRM_CLAIM_TIMEOUT, IncomingMessage, capture_message, get_note
from insights.config import Config
from storage.models import Note
from tests.bot.inprocess import make_services

TEAM = "T1"
TEXT = "Closed won Globex Corporation, 120k ARR. They picked us for the integrations."


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn() as standin:
        yield standin


@pytest.fixture
def services(session_factory: sessionmaker[Session], config: Config, slack: SlackStandIn) -> BotServices:
    return make_services(session_factory, config, slack)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def _body(ts: str, event_id: str = "Ev0001") -> dict[str, Any]:
    event = {"type": "message", "channel": "C0DEALS", "user": "U0MAYA", "text": TEXT, "ts": ts}
    return {"type": "event_callback", "team_id": TEAM, "event_id": event_id, "event": event}


def _confirmations(slack: SlackStandIn, ts: str) -> list[dict[str, Any]]:
    return [m for m in slack.messages_in("C0DEALS") if m.get("thread_ts") == ts and m.get("ts") != ts]


def _age_confirmation_claim(session_factory: sessionmaker[Session], note_id: int, by: timedelta) -> None:
    with session_factory.begin() as session:
        session.execute(
            update(Note).where(Note.id == note_id).values(confirm_claimed_at=datetime.now(UTC) - by)
        )


def test_an_event_whose_confirmation_a_dead_handler_claimed_gets_it_posted_once_the_claim_is_stale(
    session_factory: sessionmaker[Session], services: BotServices, slack: SlackStandIn
) -> None:
    ts = f"{datetime.now(UTC).timestamp():.6f}"
    # The first process stored the note and claimed the confirmation, then died.
    crashed = capture_message(
        session_factory,
        TEAM,
        IncomingMessage("C0DEALS", ts, TEXT, "U0MAYA"),
        services.tagger.current,
        services.ctx.config.icp,
    )
    assert crashed.action == "created" and crashed.confirm and crashed.note is not None
    clock = Clock()
    inbox = EventInbox(
        session_factory, lambda body: handle_event_body(body, Workspaces.one(services)), clock=clock
    )
    try:
        assert inbox.accept(_body(ts))
        # Processed again while the dead handler's claim is fresh: nothing is posted, and the event
        # is neither done nor failed.
        assert inbox.process_pending() == 1
        assert _confirmations(slack, ts) == []
        assert inbox.counts().get("pending") == 1
        assert inbox.process_pending() == 0  # its inbox claim is fresh too: not taken again at once

        # Both claims go stale: the event is taken again and the confirmation posted, once.
        _age_confirmation_claim(
            session_factory, crashed.note.id, CONFIRM_CLAIM_TIMEOUT + timedelta(seconds=1)
        )
        clock.now += STALE_CLAIM + timedelta(seconds=1)
        assert inbox.process_pending() == 1
        assert len(_confirmations(slack, ts)) == 1
        assert inbox.counts().get("pending", 0) == 0 and inbox.counts().get("done") == 1
        note = get_note(session_factory, TEAM, crashed.note.id)
        assert note is not None and note.confirmation_ts == _confirmations(slack, ts)[0]["ts"]

        # A Slack retry of the same event afterwards changes nothing.
        assert inbox.accept(_body(ts), retry=True)
        clock.now += timedelta(seconds=1)
        inbox.drain()
        assert len(_confirmations(slack, ts)) == 1
    finally:
        inbox.stop()


def test_a_duplicate_whose_confirmation_was_recorded_is_done_at_once(
    session_factory: sessionmaker[Session], services: BotServices, slack: SlackStandIn
) -> None:
    ts = f"{datetime.now(UTC).timestamp():.6f}"
    inbox = EventInbox(session_factory, lambda body: handle_event_body(body, Workspaces.one(services)))
    try:
        assert inbox.accept(_body(ts, "Ev0001"))
        assert inbox.accept(_body(ts, "Ev0002"))  # the same message delivered under a second id
        inbox.drain()
        assert len(_confirmations(slack, ts)) == 1
        assert inbox.counts() == {"done": 2, "spooled": 0}
    finally:
        inbox.stop()
