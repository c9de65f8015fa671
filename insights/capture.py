"""Use cases of outcome capture: record, re-tag, retract and correct notes.

Every function opens its own transaction and returns frozen dataclasses. Idempotency lives here
and in storage: a note is unique per workspace + channel + message ts, and the right to post its
confirmation is claimed atomically, so Slack's retries, Socket Mode redeliveries and the
message + app_mention double produce one note and one confirmation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy.orm import Session, sessionmaker

from insights.config import ICPDefinition
from insights.errors import AccountNotFoundError, NoAccountsError, UserError
from insights.scoring import score_account
from insights.service import OUTCOME_KINDS, account_fields, correction_row, resolve_account, store_examples
from insights.tag_learning import Correction
from insights.tagging import Tagger, TagResult
from storage.models import Account, Note
from storage.repositories import AccountRepository, NoteRepository, WorkspaceRepository

SessionFactory = sessionmaker[Session]
REASON_CODE = re.compile(r"[a-z][a-z0-9_]{0,49}")  # as icp.yml's taxonomy requires
MAX_REASONS = 10
MAX_LABEL = 200  # characters of an account or competitor name typed into the Change modal
# A claim on a confirmation older than this is presumed dead (its process crashed before posting).
CONFIRM_CLAIM_TIMEOUT = timedelta(seconds=30)

Action = Literal["created", "duplicate", "updated", "unchanged", "retracted", "ignored", "corrected"]


@dataclass(frozen=True)
class IncomingMessage:
    """A channel message as capture needs it (Slack markup intact; the tagger reads it)."""

    channel: str
    ts: str
    text: str
    user: str | None
    thread_ts: str | None = None
    permalink: str | None = None
    event_id: str | None = None

    @property
    def posted_at(self) -> datetime:
        return ts_to_datetime(self.ts)


@dataclass(frozen=True)
class NoteView:
    """A note as the bot and the exports see it."""

    id: int
    channel: str
    ts: str
    thread_ts: str | None
    user: str | None
    permalink: str | None
    text: str
    kind: str | None
    account: str | None
    account_id: int | None
    tier: str | None
    competitor: str | None
    reasons: tuple[str, ...]
    amount: dict[str, Any] | None
    confidence: float
    status: str
    retracted_reason: str | None
    source: str
    corrected_by: str | None
    confirmation_ts: str | None
    posted_at: datetime
    created_at: datetime
    crm_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, note: Note) -> NoteView:
        return cls(
            id=note.id,
            channel=note.channel,
            ts=note.ts,
            thread_ts=note.thread_ts,
            user=note.user_id,
            permalink=note.permalink,
            text=note.text,
            kind=note.kind,
            account=note.account,
            account_id=note.account_id,
            tier=note.tier,
            competitor=note.competitor,
            reasons=tuple(note.reasons or ()),
            amount=note.amount,
            confidence=float(note.confidence),
            status=note.status,
            retracted_reason=note.retracted_reason,
            source=note.source,
            corrected_by=note.corrected_by,
            confirmation_ts=note.confirmation_ts,
            posted_at=_aware(note.posted_at),
            created_at=_aware(note.created_at),
            crm_id=note.crm_id,
            details=dict(note.details or {}),
        )


@dataclass(frozen=True)
class CaptureResult:
    """What happened to a message, and whether the caller now owns posting its confirmation."""

    action: Action
    note: NoteView | None = None
    confirm: bool = False
    # Another handler holds a fresh claim on the confirmation and has not recorded it yet: it may
    # still post it, or it died after claiming. The caller should look again once the claim is
    # stale (CONFIRM_CLAIM_TIMEOUT) rather than settle for no confirmation.
    confirm_pending: bool = False
    # The confirmation is claimed again after an earlier claim went stale: its holder may have
    # posted it (a timeout hides whether Slack took the message), so look in the thread first.
    confirm_again: bool = False


@dataclass(frozen=True)
class AccountOutcomes:
    counts: dict[str, int] = field(default_factory=dict)
    latest: tuple[NoteView, ...] = ()


def ts_to_datetime(ts: str) -> datetime:
    """A Slack ts ("1700000000.000100") as an aware UTC datetime (now, for a malformed ts)."""
    try:
        return datetime.fromtimestamp(float(ts), UTC)
    except (ValueError, OverflowError, OSError):
        return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _labels(session: Session, team_id: str, tag: TagResult, icp: ICPDefinition) -> dict[str, Any]:
    """The note columns a tag decides, with the account's tier at this moment."""
    tier = None
    if tag.account_id is not None:
        account = session.get(Account, tag.account_id)
        if account is not None and account.team_id == team_id:
            tier = score_account(account_fields(account), icp).tier
    return {
        "kind": tag.kind,
        "account": tag.account,
        "account_id": tag.account_id,
        "tier": tier,
        "competitor": tag.competitor,
        "reasons": list(tag.reasons),
        "amount": (
            {"value": tag.amount.value, "currency": tag.amount.currency, "unit": tag.amount.unit}
            if tag.amount
            else None
        ),
        "confidence": tag.confidence,
    }


def _claim(repo: NoteRepository, note: Note) -> tuple[bool, bool]:
    """(claimed, again): whether this caller now owns posting the confirmation, and whether an
    earlier holder had claimed it (and may have posted it before dying or timing out)."""
    if note.status != "active" or note.confirmation_ts is not None:
        return False, False
    now = datetime.now(UTC)
    again = note.confirm_claimed_at is not None
    return repo.claim_confirmation(note.id, now, now - CONFIRM_CLAIM_TIMEOUT), again


def capture_message(
    session_factory: SessionFactory,
    team_id: str,
    message: IncomingMessage,
    tagger: Tagger,
    icp: ICPDefinition,
) -> CaptureResult:
    """Tag a channel message and store it as a note if it describes an outcome.

    Chatter and questions are `ignored` and leave no trace. A message that is already stored is a
    `duplicate` (a retry or the app_mention twin); its confirmation is offered again only if the
    first attempt never posted one.
    """
    tag = tagger.tag(message.text)
    if tag.kind is None:  # most channel traffic: no database round trip at all
        return CaptureResult("ignored")
    with session_factory.begin() as session:
        repo = NoteRepository(session, team_id)
        existing = repo.get(message.channel, message.ts)
        if existing is not None:
            confirm, again = _claim(repo, existing)
            pending = (
                not confirm
                and existing.status == "active"
                and existing.confirmation_ts is None
                and existing.confirm_claimed_at is not None
            )
            view = NoteView.of(existing)
            return CaptureResult(
                "duplicate", view, confirm, confirm_pending=pending, confirm_again=confirm and again
            )
        WorkspaceRepository(session).get_or_create(team_id)
        values = {
            "channel": message.channel,
            "ts": message.ts,
            "thread_ts": message.thread_ts,
            "user_id": message.user,
            "permalink": message.permalink,
            "text": message.text,
            "status": "active",
            "source": "message",
            "event_id": message.event_id,
            "posted_at": message.posted_at,
            **_labels(session, team_id, tag, icp),
        }
        note, created = repo.insert_if_absent(values)
        confirm, again = _claim(repo, note)
        action: Action = "created" if created else "duplicate"
        return CaptureResult(action, NoteView.of(note), confirm, confirm_again=confirm and again)


def edit_message(
    session_factory: SessionFactory,
    team_id: str,
    message: IncomingMessage,
    tagger: Tagger,
    icp: ICPDefinition,
) -> CaptureResult:
    """An edited message: re-tag its note, unless a person has labelled it.

    An edit that turns chatter into an outcome captures it; one that turns an outcome into chatter
    retracts the note (`retracted`, reason `edited`). Edits that leave the text as it was (Slack
    sends `message_changed` for unfurls and new thread replies too) change nothing.
    """
    with session_factory() as session:
        existing = NoteRepository(session, team_id).get(message.channel, message.ts)
        if existing is None:
            found = None
        else:
            found = (existing.text, existing.corrected_by, existing.status, existing.retracted_reason)
    if found is None:
        return capture_message(session_factory, team_id, message, tagger, icp)
    old_text, corrected_by, status, retracted_reason = found
    if old_text == message.text or retracted_reason == "deleted":
        return CaptureResult("unchanged")
    tag = tagger.tag(message.text)
    with session_factory.begin() as session:
        repo = NoteRepository(session, team_id)
        note = repo.get(message.channel, message.ts)
        if note is None:  # deleted meanwhile by a concurrent handler: nothing to re-tag
            return CaptureResult("unchanged")
        note.text = message.text
        note.updated_at = datetime.now(UTC)
        if corrected_by is not None:  # a person's labels are never overwritten by the machine
            return CaptureResult("unchanged", NoteView.of(note))
        if tag.kind is None:
            if status == "retracted":
                return CaptureResult("unchanged", NoteView.of(note))
            note.status, note.retracted_reason = "retracted", "edited"
            return CaptureResult("retracted", NoteView.of(note))
        for key, value in _labels(session, team_id, tag, icp).items():
            setattr(note, key, value)
        note.status, note.retracted_reason = "active", None
        session.flush()
        confirm, again = _claim(repo, note)
        return CaptureResult("updated", NoteView.of(note), confirm, confirm_again=confirm and again)


def delete_message(session_factory: SessionFactory, team_id: str, channel: str, ts: str) -> CaptureResult:
    """A deleted message retracts its note (kept for audit, out of every number)."""
    with session_factory.begin() as session:
        note = NoteRepository(session, team_id).get(channel, ts)
        if note is None:
            return CaptureResult("ignored")
        if note.status == "retracted" and note.retracted_reason == "deleted":
            return CaptureResult("unchanged", NoteView.of(note))
        note.status, note.retracted_reason = "retracted", "deleted"
        note.updated_at = datetime.now(UTC)
        return CaptureResult("retracted", NoteView.of(note))


def record_confirmation(session_factory: SessionFactory, team_id: str, note_id: int, ts: str | None) -> None:
    """Remember the confirmation's ts; None releases the claim so that a retry may post it."""
    with session_factory.begin() as session:
        NoteRepository(session, team_id).set_confirmation(note_id, ts)


def get_note(session_factory: SessionFactory, team_id: str, note_id: int) -> NoteView | None:
    with session_factory() as session:
        note = NoteRepository(session, team_id).by_id(note_id)
        return NoteView.of(note) if note is not None else None


def mark_not_outcome(session_factory: SessionFactory, team_id: str, note_id: int, user: str) -> CaptureResult:
    """A person says the message is not an outcome: retract the note and teach the tagger."""
    with session_factory.begin() as session:
        note = NoteRepository(session, team_id).by_id(note_id)
        if note is None:
            return CaptureResult("ignored")
        if note.status == "retracted" and note.retracted_reason == "not_an_outcome":
            return CaptureResult("unchanged", NoteView.of(note))
        now = datetime.now(UTC)
        note.status, note.retracted_reason = "retracted", "not_an_outcome"
        note.corrected_by, note.corrected_at, note.updated_at = user, now, now
        view = NoteView.of(note)
    learned = Correction(view.text, None, None, None, ())
    store_examples(session_factory, team_id, [correction_row(learned, "correction", user)])
    return CaptureResult("retracted", view)


@dataclass(frozen=True)
class NoteCorrection:
    kind: str
    account: str | None
    competitor: str | None
    reasons: tuple[str, ...]


class InvalidCorrectionError(UserError):
    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


def correct_note(
    session_factory: SessionFactory,
    team_id: str,
    note_id: int,
    user: str,
    correction: NoteCorrection,
    *,
    icp: ICPDefinition,
) -> CaptureResult:
    """Save a person's labels on a note; the machine never re-tags it afterwards.

    The account is looked up like a fit check (exact name, domain or alias first, then a
    confident fuzzy match); a name with no account is kept as written, without a tier.
    """
    if correction.kind not in OUTCOME_KINDS:
        raise InvalidCorrectionError("kind", f"'{correction.kind[:40]}' is not an outcome kind")
    reasons = list(dict.fromkeys(correction.reasons))
    unknown = [r for r in reasons if not REASON_CODE.fullmatch(r)]
    if unknown:
        raise InvalidCorrectionError(
            "reasons", f"'{unknown[0][:40]}' is not a reason code: pick from the list"
        )
    if len(reasons) > MAX_REASONS:
        raise InvalidCorrectionError("reasons", f"pick at most {MAX_REASONS} reasons")
    account_name = (correction.account or "").replace("\x00", "").strip() or None
    competitor = (correction.competitor or "").replace("\x00", "").strip() or None
    for name, value in (("account", account_name), ("competitor", competitor)):
        if value is not None and len(value) > MAX_LABEL:
            raise InvalidCorrectionError(name, f"at most {MAX_LABEL} characters")
    with session_factory.begin() as session:
        note = NoteRepository(session, team_id).by_id(note_id)
        if note is None:
            raise InvalidCorrectionError("note", "this note no longer exists")
        account: Account | None = None
        if account_name:
            try:
                account, _ = resolve_account(AccountRepository(session, team_id), account_name)
            except (AccountNotFoundError, NoAccountsError):
                account = None
        now = datetime.now(UTC)
        note.kind = correction.kind
        note.account = account.name if account is not None else account_name
        note.account_id = account.id if account is not None else None
        note.tier = score_account(account_fields(account), icp).tier if account is not None else None
        note.competitor = competitor
        note.reasons = reasons
        note.status, note.retracted_reason = "active", None
        note.corrected_by, note.corrected_at, note.updated_at = user, now, now
        note.confidence = 1.0
        view = NoteView.of(note)
    learned = Correction(view.text, view.kind, view.account, view.competitor, view.reasons)
    store_examples(session_factory, team_id, [correction_row(learned, "correction", user)])
    return CaptureResult("corrected", view)


def outcomes_for_account(
    session_factory: SessionFactory, team_id: str, account_id: int, latest: int = 3
) -> AccountOutcomes:
    """Active notes about an account: counts by kind and the latest few."""
    with session_factory() as session:
        repo = NoteRepository(session, team_id)
        counts = repo.counts_by_kind(account_id)
        notes = tuple(NoteView.of(n) for n in repo.latest_for_account(account_id, latest))
    ordered = {kind: counts[kind] for kind in OUTCOME_KINDS if kind in counts}
    return AccountOutcomes(ordered, notes)


def iter_notes(session_factory: SessionFactory, team_id: str) -> Iterator[NoteView]:
    """Every note of a workspace, retracted ones included (their status says so), oldest first."""
    with session_factory() as session:
        for note in NoteRepository(session, team_id).iter_all():
            yield NoteView.of(note)
