"""Secrets (issue 6): Slack tokens and the signing secret come from the environment or a `.env`
file, and never show up in the bot's log (at DEBUG), in a refusal to start, in what the CLI prints
(`notes export`, `digest --post`), in the database, or in `icp-bot demo`'s output.

The tokens are recognisable fakes accepted by the local Slack stand-in; each is searched for whole
and by its distinctive middle part (a log line that cuts or wraps a token still shows that).
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from bot import demo
from bot.cli import main
from bot.payloads import SlackSender
from bot.settings import Settings
from bot.standin import SlackStandIn
from tests.bot.blackbox import ICP_BOT, RunningBot, free_port, write_config
from tests.conftest import ROOT

BOT_TOKEN = "xoxb-7391824650-SECRETBOTMIDDLE4242-q8WcT1xZ"
APP_TOKEN = "xapp-1-A0STANDIN-SECRETAPPMIDDLE7777-5f1e0c9a"
SIGNING_SECRET = "SECRETSIGNINGMIDDLE9c4e1f0b77d2a"
DB_PASSWORD = "SECRETDBPASSWORD3141"
# Each secret and the part of it that is found in no other text.
SECRETS = {
    BOT_TOKEN: "SECRETBOTMIDDLE4242",
    APP_TOKEN: "SECRETAPPMIDDLE7777",
    SIGNING_SECRET: "SECRETSIGNINGMIDDLE",
    DB_PASSWORD: "SECRETDBPASSWORD",
}
# The demo's own stand-in credentials (fixed, public, but credentials all the same).
DEMO_SECRETS = {"xoxb-standin-token": "standin-token", demo.SIGNING_SECRET: demo.SIGNING_SECRET[4:20]}
OURS = ("SLACK_", "ICP_BOT_", "DATABASE_URL", "PORT")


def leaks(text: str | bytes, secrets: dict[str, str] = SECRETS) -> list[str]:
    """The secrets (or their middles) found in `text`."""
    haystack = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return [whole for whole, middle in secrets.items() if whole in haystack or middle in haystack]


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(OURS)}


# -- a running bot whose credentials are the fakes above -------------------------------------------------


class SecretBot(RunningBot):
    """`icp-bot run` against a stand-in that takes the fake tokens, logging at DEBUG."""

    @classmethod
    def launch(
        cls, folder: Path, *, mode: Literal["http", "socket"], dotenv: bool
    ) -> SecretBot:  # the harness's start(), with our tokens: in `.env` (dotenv) or in the environment
        folder.mkdir(parents=True, exist_ok=True)
        slack = SlackStandIn(token=BOT_TOKEN, app_token=APP_TOKEN).start()
        tokens = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET}
        if mode == "socket":
            tokens["SLACK_APP_TOKEN"] = APP_TOKEN
        env = clean_env() | {
            "SLACK_API_URL": slack.base_url,
            "DATABASE_URL": f"sqlite:///{folder / 'bot.db'}",
            "ICP_BOT_CONFIG": str(write_config(folder)),
            "ICP_BOT_LOG_LEVEL": "DEBUG",
        }
        if dotenv:
            (folder / ".env").write_text("".join(f"{k}={v}\n" for k, v in tokens.items()), encoding="utf-8")
        else:
            env |= tokens
        port = free_port()
        with (folder / "bot.log").open("wb") as log:
            process = subprocess.Popen(
                [*ICP_BOT, "run", f"--{mode}", "--port", str(port), "--host", "127.0.0.1"],
                env=env, cwd=folder, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        sender = (
            SlackSender(standin=slack)
            if mode == "socket"
            else SlackSender(url=f"http://127.0.0.1:{port}/slack/events", secret=SIGNING_SECRET)
        )
        bot = cls(folder, slack, process, env, sender, mode, port)
        try:
            bot._wait_until_up()
        except BaseException:
            bot.stop()
            raise
        return bot


@dataclass
class Run:
    """What a full run left behind, to search."""

    log: str
    outputs: dict[str, str]  # CLI command -> its stdout and stderr
    database: bytes

    def leaks(self) -> dict[str, list[str]]:
        places = {"bot log": self.log, "database": self.database.decode("utf-8", "replace"), **self.outputs}
        return {place: found for place, text in places.items() if (found := leaks(text))}


def full_run(bot: RunningBot) -> Run:
    """Capture, a correction through the Change form, /icp-fit, Slack refusing calls (an
    invalid_auth on a confirmation and on a mention's reply), a digest posted from the CLI, and
    `notes export`."""
    w = bot.workspace
    # Capture, and its confirmation.
    ts = bot.next_ts()
    assert (
        bot.sender.event(w.event_callback(w.message("C0DEALS", "Lost Contoso to Gong on price", ts))).status
        == 200
    )
    (confirmation,) = bot.wait_for(
        lambda: [
            c
            for c in bot.slack.calls_to("chat.postMessage")
            if c.args.get("thread_ts") == ts and c.status == 200
        ],
        what="the confirmation",
    )
    # A correction: Change, then the form saved.
    buttons = [e for b in confirmation.args["blocks"] if b["type"] == "actions" for e in b["elements"]]
    note_id = next(e["value"] for e in buttons if e["action_id"] == "note_change")
    start = len(bot.slack.calls)
    assert (
        bot.sender.interactive(
            w.block_actions("note_change", note_id, response_url=bot.slack.response_url())
        ).status
        == 200
    )
    (opened,) = bot.wait_for(lambda: bot.calls_since(start, "views.open"), what="the Change form")
    values: dict[str, dict[str, Any]] = {
        "kind": {"kind": {"type": "static_select", "selected_option": {"value": "loss"}}},
        "account": {"account": {"type": "plain_text_input", "value": "Contoso Ltd"}},
        "competitor": {"competitor": {"type": "plain_text_input", "value": "Clari"}},
        "reasons": {"reasons": {"type": "multi_static_select", "selected_options": [{"value": "price"}]}},
    }
    start = len(bot.slack.calls)
    assert bot.sender.interactive(w.view_submission(opened.args["view"], values)).status == 200
    bot.wait_for(lambda: bot.calls_since(start, "chat.update"), what="the corrected confirmation")
    # /icp-fit.
    start = len(bot.slack.calls)
    assert bot.sender.command(w.slash_command("Acme Corp", bot.slack.response_url())).status == 200
    bot.wait_for(lambda: bot.calls_since(start, "response_url"), what="the fit answer")
    # Slack refuses: the token "was revoked" (the explanation names the variable, not its value).
    mark = len(bot.log())
    bot.slack.fail_next("chat.postMessage", "invalid_auth", times=2)
    refused = bot.next_ts()
    assert (
        bot.sender.event(w.event_callback(w.message("C0DEALS", "Lost Fabrikam to Outreach", refused))).status
        == 200
    )
    bot.wait_for(lambda: "invalid_auth" in bot.log()[mark:], what="the invalid_auth log line")
    mention = w.app_mention("C0OTHER", "<@U0BOT> hello", bot.next_ts())
    assert bot.sender.event(w.event_callback(mention)).status == 200
    bot.wait_for(lambda: bot.log()[mark:].count("invalid_auth") >= 2, what="the second refusal in the log")
    # The CLI, with the same environment (and `.env`, in the same folder).
    outputs = {}
    for command in (("digest", "--post"), ("notes", "export")):
        done = bot.cli(*command)
        assert done.returncode == 0, done.stderr
        outputs[" ".join(command)] = done.stdout + done.stderr
    assert "Posted the digest" in outputs["digest --post"]
    assert [c.status for c in bot.slack.calls_to("chat.postMessage") if c.args["channel"] == "C0DIGEST"] == [
        200
    ]
    bot.stop()  # the log is complete once the process has exited
    database = b"".join(p.read_bytes() for p in bot.folder.glob("bot.db*"))
    return Run(bot.log(), outputs, database)


# -- the demo runs meanwhile, in its own process -----------------------------------------------------------


@pytest.fixture(scope="module")
def demo_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """`icp-bot demo`, started first so that it runs while the bots below do (the real secrets in the
    environment, which the demo must neither use nor show)."""
    folder = tmp_path_factory.mktemp("demo")
    env = clean_env() | {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                         "SLACK_APP_TOKEN": APP_TOKEN}  # fmt: skip
    process = subprocess.Popen(
        [*ICP_BOT, "demo", "--dir", str(folder)],
        env=env, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        yield process, folder
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture(scope="module", autouse=True)
def _start_the_demo_first(demo_process: tuple[subprocess.Popen[str], Path]) -> None:
    del demo_process


# -- the tests -------------------------------------------------------------------------------------------


def test_a_full_http_run_with_tokens_from_dotenv_shows_them_nowhere(tmp_path: Path) -> None:
    """Tokens only in `.env` in the working directory: the bot starts with them (so `.env` is read),
    and neither the log nor the CLI's output nor the database shows them."""
    bot = SecretBot.launch(tmp_path, mode="http", dotenv=True)
    try:
        assert "SLACK_BOT_TOKEN" not in bot.env and "SLACK_SIGNING_SECRET" not in bot.env
        run = full_run(bot)
    finally:
        bot.stop()
    assert "Traceback" in run.log or "invalid_auth" in run.log  # the error path was logged
    assert run.leaks() == {}


def test_a_full_socket_mode_run_with_tokens_from_the_environment_shows_them_nowhere(tmp_path: Path) -> None:
    bot = SecretBot.launch(tmp_path, mode="socket", dotenv=False)
    try:
        assert bot.env["SLACK_APP_TOKEN"] == APP_TOKEN
        run = full_run(bot)
    finally:
        bot.stop()
    assert bot.slack.calls_to("apps.connections.open")  # the app token was used, and is logged nowhere
    assert run.leaks() == {}


def test_the_environment_wins_over_dotenv_and_both_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
        monkeypatch.setenv(name, "")  # recorded, so that what load_dotenv sets is removed afterwards
        monkeypatch.delenv(name)
    monkeypatch.setenv("SLACK_APP_TOKEN", APP_TOKEN)
    (tmp_path / ".env").write_text(
        f"SLACK_BOT_TOKEN={BOT_TOKEN}\nSLACK_SIGNING_SECRET='{SIGNING_SECRET}'\n"
        "SLACK_APP_TOKEN=xapp-from-dotenv\n",
        encoding="utf-8",
    )
    settings = Settings.from_env()
    assert (settings.slack_bot_token, settings.slack_signing_secret) == (BOT_TOKEN, SIGNING_SECRET)
    assert settings.slack_app_token == APP_TOKEN  # the real environment wins
    assert leaks(repr(settings)) == [] and leaks(str(settings)) == []


# Refusals to start or to connect: the message names the variable and may show a token's first five
# characters (its kind), never more of it.
REFUSALS: dict[str, tuple[list[str], dict[str, str]]] = {
    "bot token of the wrong kind": (["run", "--http"], {"SLACK_BOT_TOKEN": "xoxp-" + BOT_TOKEN[5:]}),
    "bot token with a space": (["run", "--http"], {"SLACK_BOT_TOKEN": BOT_TOKEN.replace("-q8", " q8")}),
    "app token of the wrong kind": (["run", "--socket"], {"SLACK_APP_TOKEN": "xoxb-" + APP_TOKEN[5:]}),
    "signing secret with a space": (
        ["run", "--http"],
        {"SLACK_SIGNING_SECRET": SIGNING_SECRET[:20] + " 9c4e1f0b77d2a"},
    ),
    "database password": (
        ["notes", "export"],
        {"DATABASE_URL": f"postgresql://icp:{DB_PASSWORD}@127.0.0.1:9/icp"},
    ),
    "bot token refused by Slack": (["run", "--http"], {"SLACK_BOT_TOKEN": BOT_TOKEN[:-1] + "Y"}),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_refusal_to_start_never_echoes_a_secret(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args, overrides = REFUSALS[case]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(logging.getLogger(), "level", logging.getLogger().level)  # `run` sets it
    with SlackStandIn(token=BOT_TOKEN, app_token=APP_TOKEN) as slack:
        env = {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.base_url,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
            "ICP_BOT_CONFIG": str(write_config(tmp_path)),
            **overrides,
        }
        for name in [n for n in os.environ if n.startswith(OURS)]:
            monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        assert main([*args, "--port", str(free_port())] if args[0] == "run" else args) == 1
    out, err = capsys.readouterr()
    assert err.startswith("icp-bot: "), err
    secrets = {**SECRETS, **{value: value[5:] for value in overrides.values() if "SECRET" in value}}
    assert leaks(out + err, secrets) == [], err


def test_the_demo_shows_no_secret(demo_process: tuple[subprocess.Popen[str], Path]) -> None:
    process, folder = demo_process
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 0, out[-3000:]
    assert "Done in" in out
    secrets = {**SECRETS, **DEMO_SECRETS}
    assert leaks(out, secrets) == []
    assert leaks((folder / "bot.log").read_text(encoding="utf-8"), secrets) == []
    assert leaks(b"".join(p.read_bytes() for p in folder.glob("demo.db*")), secrets) == []


def test_secret_values_are_distinctive() -> None:
    """The search above is only as good as the markers: each is in its secret and nowhere in the
    code, config or messages the bot writes."""
    sources = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "bot").rglob("*.py"))
    sources += "".join(p.read_text(encoding="utf-8") for p in (ROOT / "templates").glob("*.j2"))
    for whole, middle in {**SECRETS, **DEMO_SECRETS}.items():
        assert middle in whole
        if whole not in DEMO_SECRETS:
            assert middle not in sources
