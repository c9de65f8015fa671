"""Privacy and retention use cases on SQLite and PostgreSQL: a person's data exported or deleted
in one transaction, old notes purged, nothing of anyone else touched."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from insights.capture import (
    IncomingMessage,
    NoteCorrection,
    capture_message,
    correct_note,
    get_note,
    iter_notes,
    mark_not_outcome,
)
from insights.config import Config
from insights.errors import UserError
from insights.privacy import (
    ERASED_USER,
    PersonData,
    apply_retention,
    check_user_id,
    count_person_data,
    delete_person_data,
    iter_person_notes,
    purge_old_notes,
    retention_cutoff,
)
from insights.service import record_corrections
from insights.tag_eval import LabelledMessage
from insights.tagging import Tagger
from storage.models import InboxEvent, TaggingExample
from storage.repositories import NoteRepository

TEAM = "T1"


def _capture(  # noqa: PLR0917 - a test helper read as one line per message
    session_factory: sessionmaker[Session],
    tagger: Tagger,
    config: Config,
    text: str,
    user: str | None,
    when: datetime,
    team: str = TEAM,
) -> int:
    message = IncomingMessage("C0DEALS", f"{when.timestamp():.6f}", text, user)
    result = capture_message(session_factory, team, message, tagger, config.icp)
    assert result.note is not None, text
    return result.note.id


def _inbox(session_factory: sessionmaker[Session], user: str, event_id: str, team: str = TEAM) -> None:
    with session_factory.begin() as session:
        session.add(
            InboxEvent(
                team_id=team,
                event_id=event_id,
                event_type="message",
                channel="C0DEALS",
                ts="1.0",
                user_id=user,
                body=json.dumps({"text": "Lost Contoso"}),
                state="pending",
                attempts=0,
                received_at=datetime(2026, 11, 20, tzinfo=UTC),
            )
        )


def _examples(session_factory: sessionmaker[Session]) -> list[tuple[str, str | None, str]]:
    with session_factory() as session:
        rows = session.scalars(select(TaggingExample).order_by(TaggingExample.id))
        return [(e.text, e.created_by, e.team_id) for e in rows]


# ---------------------------------------------------------------------------------------------
# A person's data


@pytest.fixture
def workspace(session_factory: sessionmaker[Session], tagger: Tagger, config: Config) -> dict[str, int]:
    """Maya's and Raj's notes, corrections both ways, a labelled import and inbox rows."""
    day = datetime(2026, 11, 17, 15, tzinfo=UTC)
    ids = {
        "maya_loss": _capture(
            session_factory, tagger, config, "Lost Contoso to Gong on price", "U0MAYA", day
        ),
        "maya_win": _capture(
            session_factory, tagger, config, "We won Fabrikam! $120k ARR", "U0MAYA", day + timedelta(hours=1)
        ),
        "raj_win": _capture(
            session_factory, tagger, config, "closed won Northwind Traders", "U0RAJ", day + timedelta(hours=2)
        ),
        "raj_loss": _capture(
            session_factory, tagger, config, "Lost Globex on budget", "U0RAJ", day + timedelta(hours=3)
        ),
    }
    # Raj corrects one of Maya's notes (his labels on her words), Maya retracts one of Raj's.
    correction = NoteCorrection("renewal_loss", "Contoso", "Gong", ("price",))
    correct_note(session_factory, TEAM, ids["maya_loss"], "U0RAJ", correction, icp=config.icp)
    mark_not_outcome(session_factory, TEAM, ids["raj_loss"], "U0MAYA")
    # An operator's labelled import, and the same person in another workspace.
    labelled = [LabelledMessage("Lost Initech on timing", "loss", "Initech", None, ("timing",))]
    record_corrections(session_factory, TEAM, labelled, config.taxonomy, source="import")
    _capture(session_factory, tagger, config, "Lost Contoso to Gong on price", "U0MAYA", day, team="T2")
    _inbox(session_factory, "U0MAYA", "Ev1")
    _inbox(session_factory, "U0RAJ", "Ev2")
    _inbox(session_factory, "U0MAYA", "Ev3", team="T2")
    return ids


def test_export_lists_only_that_persons_notes(
    session_factory: sessionmaker[Session], workspace: dict[str, int]
) -> None:
    notes = list(iter_person_notes(session_factory, TEAM, "U0MAYA"))
    assert [n.id for n in notes] == [workspace["maya_loss"], workspace["maya_win"]]
    assert {n.user for n in notes} == {"U0MAYA"}
    assert list(iter_person_notes(session_factory, TEAM, "U0NOBODY")) == []


def test_counting_touches_nothing_and_deleting_removes_exactly_that(
    session_factory: sessionmaker[Session], workspace: dict[str, int]
) -> None:
    before = count_person_data(session_factory, TEAM, "U0MAYA")
    # Notes: her two. Examples: Raj's correction holds her words, her retraction is her own.
    # Inbox: one row in this workspace. Corrected: the note of Raj's she retracted.
    assert before == PersonData("U0MAYA", notes=2, examples=2, inbox_events=1, corrected_notes=1)
    assert len(list(iter_notes(session_factory, TEAM))) == 4

    done = delete_person_data(session_factory, TEAM, "U0MAYA")
    assert done == before
    assert count_person_data(session_factory, TEAM, "U0MAYA").empty

    left = list(iter_notes(session_factory, TEAM))
    assert {n.id for n in left} == {workspace["raj_win"], workspace["raj_loss"]}
    retracted = get_note(session_factory, TEAM, workspace["raj_loss"])
    assert retracted is not None and (retracted.status, retracted.corrected_by) == ("retracted", ERASED_USER)
    # The operator's import stays; nothing of hers is left among the examples of this workspace.
    assert [(text, by) for text, by, team in _examples(session_factory) if team == TEAM] == [
        ("Lost Initech on timing", None)
    ]
    # Another workspace is another customer's data: untouched.
    assert [n.user for n in iter_notes(session_factory, "T2")] == ["U0MAYA"]
    assert count_person_data(session_factory, "T2", "U0MAYA").inbox_events == 1


def test_deleting_the_corrector_keeps_the_note_but_not_their_name(
    session_factory: sessionmaker[Session], workspace: dict[str, int]
) -> None:
    done = delete_person_data(session_factory, TEAM, "U0RAJ")
    # Examples: his correction of her note, and her retraction of his (it holds his words).
    assert done == PersonData("U0RAJ", notes=2, examples=2, inbox_events=1, corrected_notes=1)
    maya = get_note(session_factory, TEAM, workspace["maya_loss"])
    # Her note keeps the labels a person gave it; his name is gone from it.
    assert maya is not None and (maya.kind, maya.corrected_by) == ("renewal_loss", ERASED_USER)
    left = _examples(session_factory)
    assert all(by != "U0RAJ" and text != "Lost Globex on budget" for text, by, _ in left)


def test_a_failed_deletion_leaves_everything_as_it_was(
    session_factory: sessionmaker[Session], workspace: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: NoteRepository, user_id: str, replacement: str) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr(NoteRepository, "replace_corrector", broken)
    before = count_person_data(session_factory, TEAM, "U0MAYA")
    with pytest.raises(RuntimeError):
        delete_person_data(session_factory, TEAM, "U0MAYA")
    assert count_person_data(session_factory, TEAM, "U0MAYA") == before


@pytest.mark.parametrize("given", ["U0MAYA", "u0maya", " <@U0MAYA> ", "W0GRID1"])
def test_user_ids_are_accepted_as_slack_shows_them(given: str) -> None:
    assert check_user_id(given) in {"U0MAYA", "W0GRID1"}


@pytest.mark.parametrize("given", ["", "maya", "S0GROUP", "C0DEALS", "U0MAYA; DROP TABLE notes"])
def test_anything_else_is_a_user_error(given: str) -> None:
    with pytest.raises(UserError, match="is not a Slack user ID"):
        check_user_id(given)


# ---------------------------------------------------------------------------------------------
# Retention


@pytest.mark.parametrize(
    ("as_of", "months", "cutoff"),
    [
        (datetime(2026, 11, 22, 3, 0, tzinfo=UTC), 1, datetime(2026, 10, 22, 3, 0, tzinfo=UTC)),
        (datetime(2026, 11, 22, 3, 0, tzinfo=UTC), 12, datetime(2025, 11, 22, 3, 0, tzinfo=UTC)),
        (datetime(2026, 3, 31, 12, 0, tzinfo=UTC), 1, datetime(2026, 2, 28, 12, 0, tzinfo=UTC)),
        (datetime(2028, 3, 31, 12, 0, tzinfo=UTC), 1, datetime(2028, 2, 29, 12, 0, tzinfo=UTC)),
        (datetime(2026, 1, 15, 0, 0, tzinfo=UTC), 25, datetime(2023, 12, 15, 0, 0, tzinfo=UTC)),
        # A local time is compared in UTC: 01:00 in Helsinki on Jan 1 is Dec 31 in UTC.
        (
            datetime(2027, 1, 1, 1, 0, tzinfo=ZoneInfo("Europe/Helsinki")),
            1,
            datetime(2026, 11, 30, 23, tzinfo=UTC),
        ),
    ],
)
def test_the_cutoff_is_calendar_months_back(as_of: datetime, months: int, cutoff: datetime) -> None:
    assert retention_cutoff(as_of, months) == cutoff


def test_the_cutoff_refuses_naive_times_and_zero_months() -> None:
    with pytest.raises(ValueError, match="aware"):
        retention_cutoff(datetime(2026, 1, 1), 1)  # a naive time: the point of the test
    with pytest.raises(ValueError, match="at least 1"):
        retention_cutoff(datetime(2026, 1, 1, tzinfo=UTC), 0)


def test_old_notes_and_corrections_are_purged_and_recent_ones_kept(
    session_factory: sessionmaker[Session], tagger: Tagger, config: Config
) -> None:
    as_of = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
    old = _capture(
        session_factory,
        tagger,
        config,
        "Lost Contoso to Gong on price",
        "U0MAYA",
        datetime(2025, 5, 1, tzinfo=UTC),
    )
    edge = _capture(
        session_factory, tagger, config, "We won Fabrikam!", "U0MAYA", datetime(2026, 5, 22, 3, 0, tzinfo=UTC)
    )
    recent = _capture(
        session_factory,
        tagger,
        config,
        "closed won Northwind Traders",
        "U0RAJ",
        datetime(2026, 11, 1, tzinfo=UTC),
    )
    elsewhere = _capture(
        session_factory,
        tagger,
        config,
        "Lost Globex on budget",
        "U0RAJ",
        datetime(2024, 1, 1, tzinfo=UTC),
        team="T2",
    )
    mark_not_outcome(session_factory, TEAM, recent, "U0LEAD")  # a correction made now: kept
    with session_factory.begin() as session:  # and one made long ago
        session.add(
            TaggingExample(team_id=TEAM, text="Lost Contoso to Gong on price", kind=None, reasons=[],
                           source="correction", created_by="U0LEAD",
                           created_at=datetime(2025, 5, 2, tzinfo=UTC))
        )  # fmt: skip
    labelled = [LabelledMessage("Lost Initech on timing", "loss", "Initech", None, ("timing",))]
    record_corrections(session_factory, TEAM, labelled, config.taxonomy, source="import")

    dry = apply_retention(session_factory, TEAM, as_of, 6, dry_run=True)
    assert (dry.cutoff, dry.notes, dry.examples) == (datetime(2026, 5, 22, 3, 0, tzinfo=UTC), 1, 1)
    assert len(list(iter_notes(session_factory, TEAM))) == 3  # a dry run deletes nothing

    assert purge_old_notes(session_factory, TEAM, as_of, 6) == 1
    assert {n.id for n in iter_notes(session_factory, TEAM)} == {edge, recent}  # the edge is not older
    assert [n.id for n in iter_notes(session_factory, "T2")] == [elsewhere]
    texts = sorted((text, by) for text, by, team in _examples(session_factory) if team == TEAM)
    assert texts == [("Lost Initech on timing", None), ("closed won Northwind Traders", "U0LEAD")]
    assert old not in {n.id for n in iter_notes(session_factory, TEAM)}

    again = apply_retention(session_factory, TEAM, as_of, 6)
    assert (again.notes, again.examples) == (0, 0)  # idempotent
