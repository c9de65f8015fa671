"""Use cases of privacy and retention: a person's notes exported or deleted, old notes purged.

What a person's deletion covers, in one transaction:
- the notes of their messages (hard-deleted, retracted ones included);
- tagging examples they made by correcting notes, and examples that hold the text of one of
  their messages (someone else's correction of it);
- their raw events still waiting in the event inbox;
- their name on other people's notes they corrected: replaced by `ERASED_USER` (the labels
  stay marked as a person's, so the machine never re-tags those notes).

Retention deletes notes posted more than N months before `as_of`, and the corrections (which
hold message text) made before then. Time is always passed in.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from insights.capture import NoteView
from insights.errors import UserError
from storage.inbox import ChannelCursorRepository, InboxRepository
from storage.repositories import NoteRepository, TaggingExampleRepository, WorkspaceRepository

SessionFactory = sessionmaker[Session]
ERASED_USER = "erased"  # stands in for a deleted person's user ID where others' data named them
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,31}")


@dataclass(frozen=True)
class PersonData:
    """What a person's deletion removes (or, before it runs, would remove)."""

    user_id: str
    notes: int
    examples: int
    inbox_events: int
    corrected_notes: int  # other people's notes that name them as the corrector

    @property
    def empty(self) -> bool:
        return not (self.notes or self.examples or self.inbox_events or self.corrected_notes)


@dataclass(frozen=True)
class RetentionResult:
    cutoff: datetime  # notes posted before this (UTC) are gone, or would be with a dry run
    notes: int
    examples: int


def check_user_id(user_id: str) -> str:
    """A Slack user ID as given on the command line; UserError for anything else."""
    cleaned = user_id.strip().removeprefix("<@").removesuffix(">").upper()
    if not _USER_ID.fullmatch(cleaned):
        raise UserError(
            f"'{user_id}' is not a Slack user ID (like U0123ABCD: in Slack, a profile > ⋮ > Copy member ID)"
        )
    return cleaned


def iter_person_notes(session_factory: SessionFactory, team_id: str, user_id: str) -> Iterator[NoteView]:
    """The notes of one person's messages, retracted ones included, oldest first."""
    with session_factory() as session:
        for note in NoteRepository(session, team_id).iter_by_user(check_user_id(user_id)):
            yield NoteView.of(note)


def count_person_data(session_factory: SessionFactory, team_id: str, user_id: str) -> PersonData:
    user_id = check_user_id(user_id)
    with session_factory() as session:
        return _person_data(session, team_id, user_id)


def delete_person_data(session_factory: SessionFactory, team_id: str, user_id: str) -> PersonData:
    """Hard-delete everything stored about one person (see the module docstring), all or nothing."""
    user_id = check_user_id(user_id)
    with session_factory.begin() as session:
        notes = NoteRepository(session, team_id)
        # Examples first: those holding a text of theirs are found through their notes.
        examples = TaggingExampleRepository(session, team_id).delete_of_person(user_id)
        deleted_notes = notes.delete_by_user(user_id)
        corrected = notes.replace_corrector(user_id, ERASED_USER)
        inbox = InboxRepository(session).delete_for_user(team_id, user_id)
        return PersonData(user_id, deleted_notes, examples, inbox, corrected)


def _person_data(session: Session, team_id: str, user_id: str) -> PersonData:
    notes = NoteRepository(session, team_id)
    return PersonData(
        user_id=user_id,
        notes=notes.count_by_user(user_id),
        examples=TaggingExampleRepository(session, team_id).count_of_person(user_id),
        inbox_events=InboxRepository(session).count_for_user(team_id, user_id),
        corrected_notes=notes.count_corrected_by(user_id),
    )


def retention_cutoff(as_of: datetime, months: int) -> datetime:
    """`as_of` minus `months` calendar months, in UTC (the 31st becomes the month's last day)."""
    if months < 1:
        raise ValueError("months must be at least 1")
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise ValueError("as_of must be timezone-aware")
    moment = as_of.astimezone(UTC)
    index = moment.year * 12 + (moment.month - 1) - months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def apply_retention(
    session_factory: SessionFactory, team_id: str, as_of: datetime, months: int, *, dry_run: bool = False
) -> RetentionResult:
    """Delete notes posted more than `months` months before `as_of`, and corrections made before
    then; with `dry_run`, only count them."""
    cutoff = retention_cutoff(as_of, months)
    if dry_run:
        with session_factory() as session:
            return RetentionResult(
                cutoff,
                NoteRepository(session, team_id).count_older_than(cutoff),
                TaggingExampleRepository(session, team_id).count_corrections_before(cutoff),
            )
    with session_factory.begin() as session:
        notes = NoteRepository(session, team_id).delete_older_than(cutoff)
        examples = TaggingExampleRepository(session, team_id).delete_corrections_before(cutoff)
    return RetentionResult(cutoff, notes, examples)


def purge_old_notes(session_factory: SessionFactory, team_id: str, as_of: datetime, months: int) -> int:
    """Delete notes older than `months` months at `as_of` (see apply_retention); returns how many."""
    return apply_retention(session_factory, team_id, as_of, months).notes


def delete_workspace_data(session_factory: SessionFactory, team_id: str) -> bool:
    """Everything stored for one workspace, in one transaction (`retention.on_uninstall: delete`).

    Accounts, notes, tagging examples, import and digest runs go by cascade with the workspace
    row; the inbox and the history cursors hold no foreign key and are deleted explicitly.
    """
    with session_factory.begin() as session:
        InboxRepository(session).delete_team(team_id)
        ChannelCursorRepository(session, team_id).delete_team()
        return WorkspaceRepository(session).delete(team_id)
