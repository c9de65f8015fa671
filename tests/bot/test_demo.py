"""`icp-bot demo`: the real app replays the bundled channel traffic against the Slack stand-in."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.context import LOCAL_TEAM
from bot.demo import (
    CHANNEL_IDS,
    CONFIG_MARK,
    DemoRun,
    TrafficLine,
    load_traffic,
    message_ts,
    mrkdwn_to_terminal,
    play,
    run_demo,
)
from bot.settings import bundled_resource
from insights.capture import NoteView, iter_notes
from insights.config import load_config
from insights.errors import UserError
from insights.service import build_tagger, import_accounts
from storage.engine import make_engine, make_session_factory
from storage.schema import upgrade

TRAFFIC = bundled_resource("demo_traffic.jsonl")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@dataclass
class Played:
    run: DemoRun
    out: str
    notes: list[NoteView]  # read back from the demo's database, not from the run's own report


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> Played:
    folder = tmp_path_factory.mktemp("demo")
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        run = play(folder)
    engine = make_engine(run.database_url)
    try:
        notes = [n for n in iter_notes(make_session_factory(engine), LOCAL_TEAM) if n.source != "import"]
    finally:
        engine.dispose()
    return Played(run, buffer.getvalue(), notes)


def _final_messages(run: DemoRun) -> Iterator[tuple[TrafficLine, str]]:
    """Every message of the traffic as it stands at the end (edits applied), with its ts."""
    ts = {line.id: message_ts(line, n) for n, line in enumerate(run.traffic, start=1)}
    final: dict[str, TrafficLine] = {}
    for line in run.traffic:
        if line.edit_of:
            final[line.edit_of] = replace(final[line.edit_of], text=line.text)
        elif not line.delete_of:
            final[line.id] = line
    deleted = {line.delete_of for line in run.traffic if line.delete_of}
    for message_id, line in final.items():
        if message_id not in deleted:
            yield line, ts[message_id]


def _note_at(played: Played, line: TrafficLine, ts: str) -> list[NoteView]:
    return [n for n in played.notes if n.channel == CHANNEL_IDS[line.channel] and n.ts == ts]


def _line(run: DemoRun, message_id: str) -> tuple[TrafficLine, str]:
    number, line = next((n, x) for n, x in enumerate(run.traffic, start=1) if x.id == message_id)
    return line, message_ts(line, number)


def test_every_message_the_tagger_calls_an_outcome_has_exactly_one_note(
    played: Played, tmp_path: Path
) -> None:
    # The tagger as the bot had it during the replay: the sample accounts and nothing learned yet.
    engine = make_engine(f"sqlite:///{tmp_path / 'tagger.db'}")
    upgrade(engine)
    factory = make_session_factory(engine)
    accounts = bundled_resource("sample_accounts.csv")
    import_accounts(factory, LOCAL_TEAM, accounts.read_bytes(), accounts.name)
    tagger = build_tagger(factory, LOCAL_TEAM, load_config(played.run.config_path).taxonomy)
    engine.dispose()

    outcomes = chatter = 0
    for line, ts in _final_messages(played.run):
        notes = _note_at(played, line, ts)
        if line.bot == "Standup Bot":  # a bot that icp.yml does not name
            assert notes == [], line.id
        elif tagger.tag(line.text).kind is not None:
            outcomes += 1
            assert len(notes) == 1 and notes[0].status == "active", line.id
            assert notes[0].text == line.text
        else:
            chatter += 1
            assert notes == [], line.id
    assert outcomes >= 30 and chatter >= 30
    retracted = [n for n in played.notes if n.status != "active"]
    assert len(played.notes) == outcomes + len(retracted)  # and no note that belongs to no message


def test_ts_comes_from_the_local_time_of_each_line(played: Played) -> None:
    line, ts = _line(played.run, "m02")  # 09:14 in New York on Oct 26: still daylight time (UTC-4)
    assert line.at.isoformat() == "2026-10-26T09:14:00-04:00"
    assert int(float(ts)) == int(datetime(2026, 10, 26, 13, 14, tzinfo=UTC).timestamp())
    line, ts = _line(played.run, "m47")  # Nov 9: standard time (UTC-5)
    assert int(float(ts)) == int(datetime(2026, 11, 9, 14, 35, tzinfo=UTC).timestamp())
    (note,) = _note_at(played, line, ts)
    assert note.posted_at.replace(microsecond=0) == datetime(2026, 11, 9, 14, 35, tzinfo=UTC)
    all_ts = [message_ts(x, n) for n, x in enumerate(played.run.traffic, start=1)]
    assert len(set(all_ts)) == len(all_ts)


def test_a_deleted_message_retracts_its_note_and_the_repost_is_logged(played: Played) -> None:
    (deleted,) = _note_at(played, *_line(played.run, "m45"))
    assert deleted.status == "retracted" and deleted.retracted_reason == "deleted"
    (repost,) = _note_at(played, *_line(played.run, "m47"))
    assert (repost.status, repost.kind, repost.account) == ("active", "renewal_loss", "Fourth Coffee")
    assert "deleted → note retracted" in played.out and "icp-bot deleted its reply" in played.out


def test_an_edit_from_loss_to_win_makes_the_note_a_win(played: Played) -> None:
    (note,) = _note_at(played, *_line(played.run, "m08"))
    edit, _ = _line(played.run, "m10")
    assert (note.status, note.kind, note.account) == ("active", "win", "Wide World Importers")
    assert note.text == edit.text
    assert "edited → note now Win · Wide World Importers" in played.out
    assert "icp-bot updated its reply: Logged: Win · Wide World Importers" in played.out


def test_the_correction_carries_the_persons_labels(played: Played) -> None:
    correction = played.run.correction
    assert correction is not None
    line, ts = _line(played.run, correction.message_id)
    expect = line.expect
    assert expect is not None and expect.kind is not None
    (note,) = _note_at(played, line, ts)
    assert note.corrected_by == line.user
    assert (note.kind, note.account, note.competitor) == (expect.kind, expect.account, expect.competitor)
    assert set(note.reasons) == set(expect.reasons)
    assert any("corrected by @" in text for text in correction.after)
    assert "clicks [Change]" in played.out and "corrected by @" in played.out
    assert [n for n in played.notes if n.corrected_by] == [note]


def test_the_bot_replies_to_outcomes_only(played: Played) -> None:
    calls = played.run.calls
    posts = [c for c in calls if c.method == "chat.postMessage" and c.args.get("channel") != "C0DIGEST"]
    assert len(posts) == len(played.notes)  # one confirmation per note, none for chatter
    assert {str(c.args.get("thread_ts")) for c in posts} == {n.thread_ts or n.ts for n in played.notes}
    for line, ts in _final_messages(played.run):
        if not _note_at(played, line, ts):
            threads = [n for n in played.notes if n.thread_ts == ts]  # a captured reply in its thread
            assert sum(1 for c in posts if c.args.get("thread_ts") == ts) == len(threads), line.id
    assert (
        played.run.replay.chatter and f"Left alone: {len(played.run.replay.chatter)} messages" in played.out
    )
    assert "Ignored: 1 post by Standup Bot" in played.out


def test_fit_answers_are_printed_as_the_person_sees_them(played: Played) -> None:
    out = played.out
    assert "/icp-fit Contsoo" in out and "Did you mean one of these?" in out
    assert "[Contoso Ltd (contoso.co.uk)]" in out and "Contoso Ltd — Tier B, score 70/100" in out
    assert "/icp-fit Newco industry=Software employees=300 country=Finland" in out
    assert "Newco — Tier A, score 80/100" in out and "? Revenue — no annual revenue on record" in out
    assert "✓ Industry" in out and "✗ Company size" in out
    assert "Outcomes captured:" in out  # the account with captured outcomes
    assert len([c for c in played.run.calls if c.method == "response_url"]) == 4


def test_the_summary_gives_honest_figures(played: Played) -> None:
    r = played.run.replay
    assert (r.posts, r.edits, r.deletes) == (73, 2, 1)
    assert r.labelled == 72 and 0 < r.kind_right <= r.labelled
    assert r.outcomes_found <= r.outcomes_expected
    assert f"kind right        {r.kind_right}/{r.labelled}" in played.out
    assert f"Captured {r.captured} notes:" in played.out
    active = [n for n in played.notes if n.status == "active"]
    assert r.captured == len(active)
    assert "Replaying 76 messages from #deals, #churn, #cs-wins (Oct 26 – Nov 20)" in played.out
    assert f"DATABASE_URL={played.run.database_url} icp-bot notes export" in played.out


def test_the_output_is_plain_safe_text(played: Played) -> None:
    out = played.out
    for unsafe in ("<!channel>", "<!here>", "<@U0", "\x1b", "&amp;", "&lt;", "&gt;"):
        assert unsafe not in out, unsafe
    assert not CONTROL.search(out)
    assert "Thornbury & Pike" in out  # unescaped for the terminal


def test_running_twice_in_the_same_folder_starts_afresh(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_demo(tmp_path) == 0
    first = capsys.readouterr().out
    assert run_demo(tmp_path) == 0
    second = capsys.readouterr().out
    engine = make_engine(f"sqlite:///{tmp_path / 'demo.db'}")
    try:
        notes = [n for n in iter_notes(make_session_factory(engine), LOCAL_TEAM) if n.source != "import"]
    finally:
        engine.dispose()
    assert len(notes) == len({(n.channel, n.ts) for n in notes}) == 39

    def steady(text: str) -> str:
        return re.sub(r"\d+\.\d+ s\b", "N s", text)

    assert steady(first) == steady(second)
    assert (tmp_path / "icp.yml").read_text(encoding="utf-8").startswith(CONFIG_MARK)
    assert (tmp_path / "bot.log").exists()


def test_the_demo_never_overwrites_a_config_it_did_not_write(tmp_path: Path) -> None:
    mine = tmp_path / "icp.yml"
    mine.write_text("icp: {}\n", encoding="utf-8")
    with pytest.raises(UserError, match="not written by the demo"):
        run_demo(tmp_path)
    assert mine.read_text(encoding="utf-8") == "icp: {}\n"


def test_traffic_lines_refer_to_earlier_messages() -> None:
    traffic = load_traffic(TRAFFIC, "America/New_York")
    seen: set[str] = set()
    for line in traffic:
        for ref in (line.thread_of, line.edit_of, line.delete_of):
            assert ref is None or ref in seen, line.id
        seen.add(line.id)
    assert [line.at for line in traffic] == sorted(line.at for line in traffic)


def test_mrkdwn_becomes_plain_terminal_text() -> None:
    users = {"U0DANA": "dana"}
    text = (
        "*Logged:* _Win_ · ~old~ <https://x.test/a|Q4 QBR> <@U0DANA> <!here> <#C0DEALS|deals> "
        "<mailto:a@b.test> R&amp;D &lt;12% `code` 2*3 snake_case \x1b[31mred\x07"
    )
    assert mrkdwn_to_terminal(text, users) == (
        "Logged: Win · old Q4 QBR @dana @here #deals a@b.test R&D <12% code 2*3 snake_case [31mred"
    )


def test_the_demo_ends_with_the_digest_posted_once_and_its_files(played: Played) -> None:
    digests = [
        c for c in played.run.calls if c.method == "chat.postMessage" and c.args.get("channel") == "C0DIGEST"
    ]
    assert len(digests) == 1 and "ICP digest · week of Nov 16" in str(digests[0].args["text"])
    assert [c.args["channel_id"] for c in played.run.calls if c.method == "files.completeUploadExternal"] == [
        "C0DIGEST"
    ]
    png, html = played.run.folder / "digest.png", played.run.folder / "digest.html"
    assert png.read_bytes().startswith(b"\x89PNG") and "<html" in html.read_text(encoding="utf-8")
    assert "ICP DIGEST · week of Nov 16, 2026" in played.out and str(png) in played.out
    # The CRM history gives the first digest its trend: the 12 weeks before hold closed deals.
    assert "Imported 93 rows from demo_opportunities.csv" in played.out
    assert "previous 12 weeks: 77% (n=31)" in played.out
