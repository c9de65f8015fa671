"""The icp-bot command: contract JSON, exit codes and one-line errors for bad input."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from bot.cli import main
from insights.tagging import Evidence
from tests.conftest import DATA

ICP_BOT = Path(sys.executable).with_name("icp-bot")
SF = DATA / "salesforce_accounts.csv"
HUBSPOT = DATA / "hubspot_companies.csv"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err: str) -> None:
    assert err.startswith("icp-bot: ")
    assert err.count("\n") == 1, err
    assert "Traceback" not in err


def test_import_then_fit_names_the_same_account_every_way(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "accounts", "import", str(SF))
    assert code == 0 and "12 new" in out and "Salesforce Account export" in out
    answers = []
    for query in ("AcmeCorp", "acme corp", "ACME", "acmecorp.com"):
        code, out, err = run(capsys, "fit", query, "--json")
        assert code == 0, err
        answers.append(json.loads(out))
    assert {a["account"] for a in answers} == {"Acme Corp"}
    assert len({a["account_id"] for a in answers}) == 1
    first = answers[0]
    for key, kind in {
        "account": str,
        "matched_from": str,
        "score": int,
        "tier": str,
        "icp_version": str,
        "criteria": list,
        "disqualified_by": list,
        "outcomes": dict,
    }.items():
        assert isinstance(first[key], kind), key
    assert first["criteria"][1] == {
        "name": "Company size",
        "field": "employees",
        "matched": True,
        "weight": 30,
        "detail": "850 employees, within 200–5,000",
    }
    assert [a["matched_from"] for a in answers] == ["name", "name", "name", "domain"]


def test_unknown_account_exits_1_with_suggestions_json(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "accounts", "import", str(SF))
    code, out, err = run(capsys, "fit", "Contsoo", "--json")
    assert code == 1
    payload = json.loads(out)
    assert payload["error"] == "unknown_account" and payload["query"] == "Contsoo"
    assert payload["suggestions"][0] == "Contoso Ltd"
    assert_one_line_error(err)


def test_fit_readable_output_shows_marks_details_and_unknowns(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "accounts", "import", str(SF))
    code, out, _ = run(capsys, "fit", "northwind", "traders")  # several words join into one name
    assert code == 0
    assert out.splitlines()[0] == "Northwind Traders — tier C, score 50/100   (ICP 2026-Q4)"
    assert "? Revenue" in out and "no annual revenue on record" in out
    assert "Unknown: Revenue — the score could reach 70 if it holds." in out
    code, out, _ = run(capsys, "fit", "Tailspin Toys")
    assert "⛔ Disqualified: Too small — 45 employees, below 50; capped at tier D" in out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["fit", ""], "give an account name"),
        (["fit", "x" * 10_000], "10,000 characters"),
        (["fit", "\x01\x02\x1b[31m\x1b[0m\u200b"], "give an account name"),
        (["fit", "'; DROP TABLE accounts; --"], "no account matches"),
        (["fit", "Initech"], "no account matches 'Initech'"),
        (["accounts", "list", "--tier", "Z"], "there is no tier 'Z'"),
        (["accounts", "import", "missing.csv"], "missing.csv: no such file"),
    ],
)
def test_bad_input_gets_one_line_and_exit_1(
    workdir: Path, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    run(capsys, "accounts", "import", str(SF))
    code, _, err = run(capsys, *argv)
    assert code == 1
    assert_one_line_error(err)
    assert needle in err
    code, out, _ = run(capsys, "accounts", "list", "--json", "--limit", "0")
    assert code == 0 and len(out.splitlines()) == 12  # nothing was lost or added


def test_pasted_colour_codes_and_invisible_characters_are_ignored(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "accounts", "import", str(SF))
    code, out, _ = run(capsys, "fit", "\x1b[1;31mAcme\u200b Corp\x1b[0m", "--json")
    assert code == 0 and json.loads(out)["account"] == "Acme Corp"


def test_fit_before_any_import_says_what_to_do(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "fit", "Acme")
    assert code == 1 and "no accounts imported yet" in err and "accounts import" in err


def test_bad_csv_files_are_refused_with_row_and_column(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    no_name = workdir / "no_name.csv"
    no_name.write_text("domain,employees\nacme.com,5\n", encoding="utf-8")
    code, _, err = run(capsys, "accounts", "import", str(no_name))
    assert code == 1 and "no name column" in err and "Company name" in err
    assert_one_line_error(err)

    rows = ["Id,Name,Website,NumberOfEmployees"] + [
        f"001{i:05d},Company {i},c{i}.com,{i}" for i in range(1, 6001)
    ]
    rows[5012] = "00105012,Company 5012,c5012.com,about fifty"
    bad = workdir / "bad.csv"
    bad.write_text("\n".join(rows), encoding="utf-8")
    code, _, err = run(capsys, "accounts", "import", str(bad))
    assert code == 1
    assert "row 5012 (line 5013), column 'NumberOfEmployees': 'about fifty' is not a number" in err
    assert_one_line_error(err)

    latin1 = workdir / "latin1.csv"
    latin1.write_bytes("name,country\nMüller GmbH,Germany\n".encode("latin-1"))
    code, _, err = run(capsys, "accounts", "import", str(latin1))
    assert code == 1 and "line 2" in err and "--encoding" in err
    code, out, _ = run(capsys, "accounts", "import", str(latin1), "--encoding", "latin-1")
    assert code == 0 and "1 new" in out

    code, out, _ = run(capsys, "accounts", "list", "--json", "--limit", "0")
    assert [json.loads(line)["account"] for line in out.splitlines()] == [
        "Müller GmbH"
    ]  # nothing else written


def test_config_typo_is_refused_at_start_naming_line_and_key(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = (Path(__file__).parents[2] / "bot" / "resources" / "icp.example.yml").read_text(
        encoding="utf-8"
    )
    lines = example.splitlines()
    line_no = next(i for i, line in enumerate(lines) if "between: [200, 5000]" in line) + 1
    (workdir / "icp.yml").write_text(
        example.replace("between: [200, 5000]", "betwen: [200, 5000]"), encoding="utf-8"
    )
    code, _, err = run(capsys, "fit", "Acme")
    assert code == 1
    assert_one_line_error(err)
    assert f"line {line_no}" in err and "unknown key 'betwen'" in err and "did you mean 'between'" in err
    code, _, err = run(capsys, "config", "check")
    assert code == 1 and f"line {line_no}" in err


def test_init_writes_an_example_that_checks_clean(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "init")
    assert code == 0 and (workdir / "icp.yml").exists()
    code, out, _ = run(capsys, "config", "check")
    assert code == 0 and "OK — ICP 2026-Q4, 4 criteria" in out
    code, _, err = run(capsys, "init")
    assert code == 1 and "--force" in err


def test_unreachable_database_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody:secret@127.0.0.1:1/nowhere")
    code, _, err = run(capsys, "fit", "Acme")
    assert code == 1
    assert_one_line_error(err)
    assert "cannot use the database" in err and "DATABASE_URL" in err and "secret" not in err
    monkeypatch.setenv("DATABASE_URL", "not a url")
    code, _, err = run(capsys, "fit", "Acme")
    assert code == 1 and "is not a database URL" in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["fit"])
    assert caught.value.code == 2
    with pytest.raises(SystemExit) as caught:
        main(["no-such-command"])
    assert caught.value.code == 2


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ICP_BOT_", "DATABASE_URL"))}
    env.update(extra)
    return env


def test_installed_command_runs_the_demo_from_anywhere(tmp_path: Path) -> None:
    """The entry point works outside the checkout: templates and sample data ship with the package."""
    assert ICP_BOT.exists(), f"{ICP_BOT} missing: install the project (pip install -e .)"
    result = subprocess.run(
        [str(ICP_BOT), "demo", "--dir", str(tmp_path / "demo")],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Imported 230 accounts" in result.stdout
    assert "Logged: Renewal loss · Tailspin Toys · Tier B · champion loss" in result.stdout
    assert "Did you mean one of these?" in result.stdout
    assert "Contoso Ltd — Tier B, score 70/100" in result.stdout
    assert "corrected by @" in result.stdout
    assert (tmp_path / "demo" / "demo.db").exists()
    assert result.stderr == ""


def test_installed_command_creates_the_default_sqlite_database(tmp_path: Path) -> None:
    env = _env()
    imported = subprocess.run(
        [str(ICP_BOT), "accounts", "import", str(HUBSPOT)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert imported.returncode == 0, imported.stderr
    assert (tmp_path / "icp-bot.db").exists()
    fit = subprocess.run(
        [str(ICP_BOT), "fit", "acmecorp.com", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert fit.returncode == 0 and json.loads(fit.stdout)["account"] == "Acme Corp"


SAMPLE = Path(__file__).parents[2] / "bot" / "resources" / "sample_accounts.csv"


def test_tag_prints_the_contract_json_per_message(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run(capsys, "accounts", "import", str(SAMPLE))
    messages = workdir / "messages.txt"
    messages.write_text(
        "CW Fabrikam 85k ACV, beat Gong on ease of use\n"
        '{"text": "#churn Tailspin gave notice, champion left"}\n'
        "\n"
        "lunch anyone?\n",
        encoding="utf-8",
    )
    code, out, _ = run(capsys, "tag", str(messages), "--json")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(r["kind"], r["account"], r["competitor"]) for r in lines] == [
        ("win", "Fabrikam Systems", "Gong"),
        ("renewal_loss", "Tailspin Toys", None),
        (None, None, None),
    ]
    for row in lines:
        assert {"text", "kind", "account", "competitor", "reasons", "confidence"} <= row.keys()
    assert lines[0]["amount"] == {"value": 85000.0, "currency": "USD", "unit": "ACV"}
    # Every field of the evidence, as the tagger gives it (the JSON is built field by field).
    assert lines[0]["evidence"] and all(
        e.keys() == {f.name for f in fields(Evidence)} for e in lines[0]["evidence"]
    )
    assert {"field": "kind", "value": "win", "words": "CW"} in lines[0]["evidence"]
    assert lines[1]["reasons"] == ["champion_loss"]

    monkeypatch.setattr("sys.stdin", io.StringIO("we lost contoso. too small for us honestly\n"))
    code, out, _ = run(capsys, "tag")
    assert code == 0 and json.loads(out)["reasons"] == ["poor_fit"]

    # --stats: how long it took, on standard error; standard output stays one JSON per message.
    code, out, err = run(capsys, "tag", str(messages), "--json", "--stats")
    assert code == 0 and [json.loads(line)["kind"] for line in out.splitlines()] == [
        "win",
        "renewal_loss",
        None,
    ]
    assert re.fullmatch(
        r"Tagged 3 messages in \d+\.\d\d s \([\d,]+ a second, one core\), "
        r"after \d+\.\d\d s loading 230 accounts\.\n",
        err,
    ), err


def test_tag_eval_prints_the_same_figures_as_the_test(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from insights.config import load_config
    from insights.tag_eval import evaluate
    from insights.tagging import Tagger
    from tests.insights.test_tagging import sample_accounts
    from tests.insights.test_tagging_eval import TAGGING, load_labelled

    run(capsys, "accounts", "import", str(SAMPLE))
    code, out, _ = run(capsys, "tag", "--eval", str(TAGGING / "labelled.jsonl"), "--json")
    assert code == 0
    from_cli = json.loads(out)
    config = load_config(Path(__file__).parents[2] / "bot" / "resources" / "icp.example.yml")
    in_process = evaluate(Tagger(sample_accounts(), config.taxonomy).tag, load_labelled("labelled.jsonl"))
    for key in ("kind_accuracy", "account_accuracy", "competitor_accuracy", "reason_recall",
                "reason_precision", "chatter_false_capture"):  # fmt: skip
        assert from_cli[key] == pytest.approx(getattr(in_process, key)), key
    code, out, _ = run(capsys, "tag", "--eval", str(TAGGING / "labelled.jsonl"))
    assert "kind accuracy" in out and "Worst misses:" in out


def test_tag_eval_refuses_a_bad_file_naming_the_line(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = workdir / "bad.jsonl"
    bad.write_text(
        '{"text": "won Acme", "kind": "win"}\n{"text": "x", "kind": "victory"}\n', encoding="utf-8"
    )
    code, _, err = run(capsys, "tag", "--eval", str(bad))
    assert code == 1
    assert_one_line_error(err)
    assert "line 2" in err and "'kind' must be one of" in err
    bad.write_text("{not json\n", encoding="utf-8")
    code, _, err = run(capsys, "tag", str(bad))
    assert code == 1 and "line 1: not valid JSON" in err


def test_tag_learn_teaches_the_workspace(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.insights.test_tagging_eval import TAGGING

    run(capsys, "accounts", "import", str(SAMPLE))
    code, out, _ = run(capsys, "tag", "--learn", str(TAGGING / "dialect_corrections.jsonl"))
    assert code == 0
    assert "Kept 40 labelled messages" in out and "'crashed on landing' means implementation_failure" in out
    messages = workdir / "m.txt"
    messages.write_text("the cranes binned us for the gongsters\n", encoding="utf-8")
    code, out, _ = run(capsys, "tag", str(messages))
    result = json.loads(out)
    assert (result["kind"], result["account"], result["competitor"]) == (
        "loss",
        "Kranich Software AG",
        "Gong",
    )
