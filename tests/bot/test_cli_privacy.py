"""`icp-bot notes export --user`, `notes delete --user [--yes]` and `notes purge`, on both databases."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.cli import main
from bot.context import build_context
from bot.settings import Settings, bundled_resource
from insights.capture import IncomingMessage, capture_message
from insights.service import build_tagger

NOW = datetime.now(UTC)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def notes(workdir: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """Sample accounts and four notes: two of Maya's (one two years old), two of Raj's."""
    assert run(capsys, "accounts", "import", str(bundled_resource("sample_accounts.csv")))[0] == 0
    ctx = build_context(Settings.from_env())
    try:
        tagger = build_tagger(ctx.session_factory, ctx.team_id, ctx.config.taxonomy)
        messages = [
            ("Lost Contoso to Gong on price", "U0MAYA", NOW - timedelta(days=730)),
            ("We won Fabrikam! $120k ARR", "U0MAYA", NOW - timedelta(days=3)),
            ("closed won Northwind Traders", "U0RAJ", NOW - timedelta(days=2)),
            ("Lost Globex on budget", "U0RAJ", NOW - timedelta(days=1)),
        ]
        for text, user, when in messages:
            message = IncomingMessage("C0DEALS", f"{when.timestamp():.6f}", text, user)
            assert capture_message(ctx.session_factory, ctx.team_id, message, tagger, ctx.config.icp).note
    finally:
        ctx.engine.dispose()
    return workdir


def _exported(capsys: pytest.CaptureFixture[str], *extra: str) -> list[dict[str, object]]:
    code, out, err = run(capsys, "notes", "export", *extra)
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines()]


def test_export_of_one_person_holds_only_their_notes(notes: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mine = _exported(capsys, "--user", "U0MAYA")
    assert [n["user"] for n in mine] == ["U0MAYA", "U0MAYA"]
    assert [n["text"] for n in mine] == ["Lost Contoso to Gong on price", "We won Fabrikam! $120k ARR"]
    assert len(_exported(capsys)) == 4
    assert _exported(capsys, "--user", "U0NOBODY") == []


def test_delete_without_yes_only_counts(notes: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "notes", "delete", "--user", "U0MAYA")
    assert (code, err) == (0, "")
    assert out.startswith("U0MAYA: 2 notes, 0 tagging examples and 0 inbox events would be deleted")
    assert "Nothing was deleted: run again with --yes to delete." in out
    assert len(_exported(capsys, "--user", "U0MAYA")) == 2


def test_delete_with_yes_removes_that_persons_notes(notes: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "notes", "delete", "--user", "U0MAYA", "--yes")
    assert (code, err) == (0, "")
    assert out == (
        "Deleted 2 notes, 0 tagging examples and 0 inbox events of U0MAYA; "
        "0 notes they corrected now name 'erased' instead.\n"
    )
    assert _exported(capsys, "--user", "U0MAYA") == []
    assert {n["user"] for n in _exported(capsys)} == {"U0RAJ"}
    code, out, _ = run(capsys, "notes", "delete", "--user", "U0MAYA")
    assert (code, out) == (0, "Nothing is stored about U0MAYA in workspace local.\n")


@pytest.mark.parametrize(
    "argv",
    [
        ["notes", "delete", "--user", "maya", "--yes"],
        ["notes", "delete", "--user", "S0GROUP"],
        ["notes", "export", "--user", "#deals"],
    ],
)
def test_a_bad_user_id_is_one_line_and_exit_1(
    workdir: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, out, err = run(capsys, *argv)
    assert (code, out) == (1, "")
    assert err.startswith("icp-bot: ") and err.count("\n") == 1 and "is not a Slack user ID" in err


def test_delete_needs_a_user(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["notes", "delete", "--yes"])
    assert exited.value.code == 2
    assert "--user" in capsys.readouterr().err


def test_purge_without_retention_says_how_to_set_it(notes: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "notes", "purge")
    assert (code, out) == (1, "")
    assert err == (
        "icp-bot: retention.notes_months is not set in icp.yml, so notes are kept for good; "
        "set it, or pass --months N\n"
    )
    assert run(capsys, "notes", "purge", "--months", "0")[0] == 1


def test_purge_follows_the_config_and_a_dry_run_deletes_nothing(
    notes: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = bundled_resource("icp.example.yml").read_text(encoding="utf-8")
    (notes / "icp.yml").write_text(example + "\nretention:\n  notes_months: 12\n", encoding="utf-8")
    code, out, _ = run(capsys, "notes", "purge", "--dry-run")
    assert code == 0 and "(12 months ago): 1 note and 0 corrections would be deleted." in out
    assert len(_exported(capsys)) == 4
    code, out, _ = run(capsys, "notes", "purge")
    assert code == 0 and "1 note and 0 corrections deleted." in out
    assert [n["text"] for n in _exported(capsys, "--user", "U0MAYA")] == ["We won Fabrikam! $120k ARR"]
    code, out, _ = run(capsys, "notes", "purge", "--months", "1", "--dry-run")
    assert code == 0 and "(1 month ago): 0 notes and 0 corrections would be deleted." in out
