"""Outcome capture as use cases, on SQLite and PostgreSQL: idempotent, editable, correctable."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from insights.capture import (
    IncomingMessage,
    InvalidCorrectionError,
    NoteCorrection,
    capture_message,
    correct_note,
    delete_message,
    edit_message,
    get_note,
    iter_notes,
    mark_not_outcome,
    outcomes_for_account,
    record_confirmation,
)
from insights.config import Config
from insights.service import fit_for
from insights.tagging import Tagger
from storage.models import Note
from storage.repositories import TaggingExampleRepository

ACCOUNTS = Path(__file__).parent.parent.parent / "bot" / "resources" / "sample_accounts.csv"
TEAM = "T1"


def _message(text: str, ts: str = "1761900000.000100", channel: str = "C0DEALS") -> IncomingMessage:
    return IncomingMessage(channel=channel, ts=ts, text=text, user="U0MAYA", event_id="Ev1")


def test_an_outcome_becomes_a_note_with_the_accounts_tier_and_chatter_leaves_nothing(
    session_factory: sessionmaker[Session], tagger: Tagger, config: Config
) -> None:
    chatter = capture_message(
        session_factory, TEAM, _message("pipeline review at 3pm", "1.1"), tagger, config.icp
    )
    assert (chatter.action, chatter.note, chatter.confirm) == ("ignored", None, False)

    result = capture_message(
        session_factory, TEAM, _message("Lost Contoso to Gong on price, $48k ARR"), tagger, config.icp
    )
    assert result.action == "created" and result.confirm is True
    note = result.note
    assert note is not None
    assert (note.kind, note.account, note.competitor, note.reasons) == (
        "loss",
        "Contoso Ltd",
        "Gong",
        ("price",),
    )
    expected_tier = fit_for(session_factory, TEAM, "Contoso Ltd", config.icp).fit.tier
    assert note.tier == expected_tier
    assert note.amount is not None and note.amount["value"] == 48_000
    assert note.posted_at == datetime.fromtimestamp(1761900000.0001, UTC)
    assert [n.id for n in iter_notes(session_factory, TEAM)] == [note.id]


def test_retries_and_the_mention_twin_give_one_note_and_one_confirmation(
    session_factory: sessionmaker[Session], tagger: Tagger, config: Config
) -> None:
    message = _message("We won Contoso! :tada:")
    results = [capture_message(session_factory, TEAM, message, tagger, config.icp) for _ in range(5)]
    assert [r.action for r in results] == ["created"] + ["duplicate"] * 4
    assert [r.confirm for r in results] == [True, False, False, False, False]
    assert len(list(iter_notes(session_factory, TEAM))) == 1


def test_concurrent_deliveries_of_one_message_store_it_once(
    session_factory: sessionmaker[Session], tagger: Tagger, config: Config
) -> None:
    message = _message("closed won Fabrikam, 3 year deal")
    barrier = threading.Barrier(6)
    results = []

    def deliver() -> None:
        barrier.wait()
        results.append(capture_message(session_factory, TEAM, message, tagger, config.icp))

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.action for r in results).count("created") == 1
    assert sum(r.confirm for r in results) == 1
    assert len(list(iter_notes(session_factory, TEAM))) == 1


def test_a_lost_confirmation_is_posted_by_a_later_retry_but_not_by_an_early_one(
    session_factory: sessionmaker[Session], tagger: Tagger, config: Config
) -> None:
    message = _message("Lost Contoso on price")
    first = capture_message(session_factory, TEAM, message, tagger, config.icp)
    assert first.confirm and first.note is not None
    # The first handler failed to post: it releases its claim, and the next retry takes it.
    record_confirmation(session_factory, TEAM, first.note.id, None)
    retry = capture_message(session_factory, TEAM, message, tagger, config.icp)
    assert retry.action == "duplicate" and retry.confirm is True
    # The claim holder is alive (claimed a moment ago): a third delivery does not post again.
    assert capture_message(session_factory, TEAM, message, tagger, config.icp).confirm is False
    # A claim that went stale (its process died) can be taken over.
    with session_factory.begin() as session:
        note = session.get(Note, first.note.id)
        assert note is not None
        note.confirm_claimed_at = datetime.now(UTC) - timedelta(minutes=5)
    assert capture_message(session_factory, TEAM, message, tagger, config.icp).confirm is True
    record_confirmation(session_factory, TEAM, first.note.id, "1761900001.000200")
    assert capture_message(session_factory, TEAM, message, tagger, config.icp).confirm is False
    view = get_note(session_factory, TEAM, first.note.id)
    assert view is not None and view.confirmation_ts == "1761900001.000200"


def test_an_edit_retags_a_delete_retracts_and_both_are_kept_for_audit(
    session_factory: sessionmaker[Session], tagger: Tagger, config: Config
) -> None:
    created = capture_message(session_factory, TEAM, _message("Lost Contoso on price"), tagger, config.icp)
    assert created.note is not None and created.note.kind == "loss"
    # Slack sends message_changed with the same text for unfurls and thread replies: no change.
    same = edit_message(session_factory, TEAM, _message("Lost Contoso on price"), tagger, config.icp)
    assert same.action == "unchanged"
    edited = edit_message(session_factory, TEAM, _message("Won Contoso"), tagger, config.icp)
    assert edited.action == "updated" and edited.note is not None
    assert (edited.note.id, edited.note.kind, edited.note.reasons) == (created.note.id, "win", ())
    assert edited.confirm is False  # the first confirmation exists (claimed); the caller updates it

    deleted = delete_message(session_factory, TEAM, "C0DEALS", created.note.ts)
    assert deleted.action == "retracted" and deleted.note is not None
    assert (deleted.note.status, deleted.note.retracted_reason) == ("retracted", "deleted")
    assert delete_message(session_factory, TEAM, "C0DEALS", created.note.ts).action == "unchanged"
    assert delete_message(session_factory, TEAM, "C0DEALS", "9.9").action == "ignored"
    (kept,) = iter_notes(session_factory, TEAM)
    assert (kept.status, kept.kind, kept.text) == ("retracted", "win", "Won Contoso")
    assert outcomes_for_account(session_factory, TEAM, created.note.account_id or 0).counts == {}


def test_an_edit_into_chatter_retracts_and_an_edit_into_an_outcome_captures(
    session_factory: sessionmaker[Session], tagger: Tagger, config: Config
) -> None:
    new = edit_message(session_factory, TEAM, _message("Lost Contoso to Clari", "2.0"), tagger, config.icp)
    assert new.action == "created" and new.confirm
    gone = edit_message(session_factory, TEAM, _message("nvm, wrong channel", "2.0"), tagger, config.icp)
    assert gone.action == "retracted" and gone.note is not None and gone.note.retracted_reason == "edited"
    back = edit_message(
        session_factory, TEAM, _message("Lost Contoso to Clari on price", "2.0"), tagger, config.icp
    )
    assert back.action == "updated" and back.note is not None and back.note.status == "active"


def test_a_person_corrects_a_note_and_the_machine_never_retags_it(
    session_factory: sessionmaker[Session], tagger: Tagger, config: Config
) -> None:
    created = capture_message(session_factory, TEAM, _message("Lost Contoso on price"), tagger, config.icp)
    assert created.note is not None
    fix = NoteCorrection(
        kind="renewal_loss", account="fabrikam", competitor="Gainsight", reasons=("adoption",)
    )
    corrected = correct_note(session_factory, TEAM, created.note.id, "U0LEAD", fix, icp=config.icp)
    note = corrected.note
    assert note is not None
    assert (note.kind, note.account, note.competitor, note.reasons) == (
        "renewal_loss",
        "Fabrikam Systems",
        "Gainsight",
        ("adoption",),
    )
    assert note.corrected_by == "U0LEAD" and note.tier is not None
    later = edit_message(session_factory, TEAM, _message("Won Contoso!"), tagger, config.icp)
    assert later.action == "unchanged"
    stored = get_note(session_factory, TEAM, created.note.id)
    assert stored is not None and (stored.kind, stored.text) == ("renewal_loss", "Won Contoso!")
    with session_factory() as session:
        (example,) = TaggingExampleRepository(session, TEAM).all()
    assert (example.kind, example.account, example.created_by) == (
        "renewal_loss",
        "Fabrikam Systems",
        "U0LEAD",
    )

    unknown = NoteCorrection(kind="win", account="Totally New Prospect Co", competitor="", reasons=())
    kept = correct_note(session_factory, TEAM, created.note.id, "U0LEAD", unknown, icp=config.icp).note
    assert kept is not None and (kept.account, kept.account_id, kept.tier, kept.competitor) == (
        "Totally New Prospect Co",
        None,
        None,
        None,
    )
    with pytest.raises(InvalidCorrectionError):
        correct_note(
            session_factory,
            TEAM,
            created.note.id,
            "U0LEAD",
            NoteCorrection("won", None, None, ()),
            icp=config.icp,
        )


def test_not_an_outcome_retracts_and_teaches_and_counts_exclude_it(
    session_factory: sessionmaker[Session], tagger: Tagger, config: Config
) -> None:
    a = capture_message(session_factory, TEAM, _message("Lost Contoso on price", "3.0"), tagger, config.icp)
    b = capture_message(
        session_factory, TEAM, _message("Contoso upsell signed, 400 seats", "4.0"), tagger, config.icp
    )
    assert a.note is not None and b.note is not None and a.note.account_id is not None
    before = outcomes_for_account(session_factory, TEAM, a.note.account_id)
    assert sum(before.counts.values()) == 2
    assert [n.ts for n in before.latest] == ["4.0", "3.0"]  # newest first

    result = mark_not_outcome(session_factory, TEAM, a.note.id, "U0LEAD")
    assert result.action == "retracted"
    assert mark_not_outcome(session_factory, TEAM, a.note.id, "U0LEAD").action == "unchanged"
    after = outcomes_for_account(session_factory, TEAM, a.note.account_id)
    assert [n.ts for n in after.latest] == ["4.0"]
    fit = fit_for(session_factory, TEAM, "Contoso Ltd", config.icp)
    assert fit.outcomes == after.counts and [r.text for r in fit.recent] == [b.note.text]
    with session_factory() as session:
        (example,) = TaggingExampleRepository(session, TEAM).all()
    assert example.kind is None and example.text == "Lost Contoso on price"
    # The person's decision sticks: an edit does not bring the note back.
    assert (
        edit_message(
            session_factory, TEAM, _message("Lost Contoso on budget", "3.0"), tagger, config.icp
        ).action
        == "unchanged"
    )


@pytest.mark.parametrize(
    ("field", "correction"),
    [
        ("reasons", NoteCorrection(kind="loss", account=None, competitor=None, reasons=("<!channel>",))),
        ("reasons", NoteCorrection(kind="loss", account=None, competitor=None, reasons=("Price",))),
        ("reasons", NoteCorrection(kind="loss", account=None, competitor=None, reasons=("x" * 51,))),
        (
            "reasons",
            NoteCorrection(
                kind="loss", account=None, competitor=None, reasons=tuple(f"r{i}" for i in range(11))
            ),
        ),
        ("account", NoteCorrection(kind="loss", account="A" * 201, competitor=None, reasons=())),
        ("competitor", NoteCorrection(kind="loss", account=None, competitor="G" * 201, reasons=())),
        ("kind", NoteCorrection(kind="<!here>" * 30, account=None, competitor=None, reasons=())),
    ],
)
def test_a_correction_the_modal_could_not_have_sent_is_refused_and_changes_nothing(
    session_factory: sessionmaker[Session],
    tagger: Tagger,
    config: Config,
    field: str,
    correction: NoteCorrection,
) -> None:
    """A forged view submission: reason codes not in the lower_snake_case form icp.yml requires,
    more than 10 of them, names longer than 200 characters, an unknown kind (quoted cut short)."""
    created = capture_message(session_factory, TEAM, _message("Lost Contoso on price"), tagger, config.icp)
    assert created.note is not None
    with pytest.raises(InvalidCorrectionError) as refused:
        correct_note(session_factory, TEAM, created.note.id, "U0LEAD", correction, icp=config.icp)
    assert refused.value.field == field and len(str(refused.value)) < 120
    stored = get_note(session_factory, TEAM, created.note.id)
    assert stored is not None and (stored.kind, stored.reasons, stored.corrected_by) == (
        "loss",
        ("price",),
        None,
    )


def test_a_correction_drops_nul_and_repeated_reasons(
    session_factory: sessionmaker[Session], tagger: Tagger, config: Config
) -> None:
    created = capture_message(session_factory, TEAM, _message("Lost Contoso on price"), tagger, config.icp)
    assert created.note is not None
    fix = NoteCorrection(
        kind="loss", account="Con\x00toso", competitor="Go\x00ng", reasons=("price", "timing", "price")
    )
    note = correct_note(session_factory, TEAM, created.note.id, "U0LEAD", fix, icp=config.icp).note
    assert note is not None and (note.account, note.competitor, note.reasons) == (
        "Contoso Ltd",
        "Gong",
        ("price", "timing"),
    )
