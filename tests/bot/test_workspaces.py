"""Several workspaces through OAuth installation, on PostgreSQL: each is installed through
/slack/install, and a /icp-fit, a capture, a digest and an export in one never read or write the
other's rows. Uninstalling removes that workspace's token and (as configured) its data.
"""

from __future__ import annotations

import http.cookies
import json
import subprocess
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from bot.payloads import Workspace
from tests.bot.blackbox import ICP_BOT, RunningBot, db_upgrade
from tests.conftest import PostgresSchema

pytestmark = pytest.mark.postgres
ALPHA, BETA, STRANGER = "T0ALPHA", "T0BETA", "T0STRANGER"
DEALS = "C0DEALS"


@pytest.fixture(scope="module")
def oauth_bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBot]:
    schema = PostgresSchema()
    folder = tmp_path_factory.mktemp("oauth")
    try:
        db_upgrade(schema.schema_url)
        env = {
            "SLACK_BOT_TOKEN": "",  # no single workspace: OAuth installation
            "SLACK_CLIENT_ID": "1234567890.9876543210",
            "SLACK_CLIENT_SECRET": "standin-client-secret-0123456789",
            "ICP_BOT_TEAM_ID": ALPHA,  # where the fixture's sample accounts are imported
        }
        extra = "\nretention:\n  on_uninstall: delete\n"
        with RunningBot.start(
            folder, mode="http", database_url=schema.schema_url, extra_env=env, extra_config=extra
        ) as bot:
            beta_accounts = folder / "beta.csv"
            beta_accounts.write_text(
                "name,domain,industry,employees,country\nGlobex Corporation,globex.com,Software,900,Canada\n",
                encoding="utf-8",
            )
            imported = _cli(bot, BETA, "accounts", "import", str(beta_accounts))
            assert imported.returncode == 0, imported.stderr
            for team, name in ((ALPHA, "Alpha Inc"), (BETA, "Beta GmbH")):
                _install(bot, team, name)
            yield bot
    finally:
        schema.drop()


def _cli(bot: RunningBot, team: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ICP_BOT, *args],
        env={**bot.env, "ICP_BOT_TEAM_ID": team},
        cwd=bot.folder,
        capture_output=True,
        text=True,
        check=False,
    )


def _get(bot: RunningBot, path: str, cookie: str | None = None) -> tuple[int, str, dict[str, str]]:
    request = urllib.request.Request(f"http://127.0.0.1:{bot.port}{path}")
    if cookie:
        request.add_header("Cookie", cookie)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, response.read().decode(), dict(response.headers.items())
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), dict(error.headers.items())


def _install(bot: RunningBot, team: str, name: str) -> None:
    """What an admin's browser does: open /slack/install, approve in Slack, land on the redirect."""
    status, page, headers = _get(bot, "/slack/install")
    assert status == 200 and "slack.com/oauth/v2/authorize" in page
    cookie = http.cookies.SimpleCookie(headers["Set-Cookie"])
    state = cookie["slack-app-oauth-state"].value
    assert f"state={state}" in page
    code = bot.slack.add_install(team, name)
    query = urlencode({"code": code, "state": state})
    status, page, _ = _get(bot, f"/slack/oauth_redirect?{query}", cookie=f"slack-app-oauth-state={state}")
    assert status == 200, page
    assert "Thank you!" in page or "success" in page.lower()


def _notes(bot: RunningBot, team: str) -> list[dict[str, Any]]:
    done = _cli(bot, team, "notes", "export")
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def test_a_forged_install_without_the_state_cookie_installs_nothing(oauth_bot: RunningBot) -> None:
    bot = oauth_bot
    code = bot.slack.add_install("T0FORGED", "Forged")
    status, _, _ = _get(bot, f"/slack/oauth_redirect?{urlencode({'code': code, 'state': 'made-up'})}")
    assert status >= 400
    assert not [c for c in bot.slack.calls_to("oauth.v2.access") if c.args.get("code") == code]


def test_capture_fit_digest_and_export_stay_in_their_workspace(oauth_bot: RunningBot) -> None:
    bot = oauth_bot
    alpha, beta = Workspace(team_id=ALPHA, bot_user_id="U0BOT"), Workspace(team_id=BETA, bot_user_id="U0BOT")
    alpha_ts, beta_ts = bot.next_ts(), bot.next_ts()
    assert (
        bot.sender.event(
            alpha.event_callback(alpha.message(DEALS, "Lost Acme Corp to Gong on price", alpha_ts))
        ).status
        == 200
    )
    assert (
        bot.sender.event(
            beta.event_callback(beta.message(DEALS, "Closed won Globex, beat Clari on ease of use", beta_ts))
        ).status
        == 200
    )

    def both_confirmed() -> list[Any] | None:
        posts = [
            c
            for c in bot.slack.calls_to("chat.postMessage")
            if c.args.get("thread_ts") in {alpha_ts, beta_ts}
        ]
        return posts if len(posts) == 2 else None

    posts = bot.wait_for(both_confirmed, what="a confirmation in each workspace")
    # Each confirmation went out with its own workspace's token.
    assert {bot.slack.team_of(c): c.args["thread_ts"] for c in posts} == {ALPHA: alpha_ts, BETA: beta_ts}

    alpha_notes, beta_notes = _notes(bot, ALPHA), _notes(bot, BETA)
    assert [(n["ts"], n["kind"], n["account"]) for n in alpha_notes] == [(alpha_ts, "loss", "Acme Corp")]
    assert [(n["ts"], n["kind"]) for n in beta_notes] == [(beta_ts, "win")]
    assert beta_notes[0]["account"] == "Globex Corporation"

    # /icp-fit answers from the asking workspace's accounts only.
    for team, query, expected in ((ALPHA, "Acme Corp", "Acme Corp"), (BETA, "Globex", "Globex Corporation")):
        workspace = Workspace(team_id=team, bot_user_id="U0BOT")
        start = len(bot.slack.calls)
        assert bot.sender.command(workspace.slash_command(query, bot.slack.response_url())).status == 200
        answer = bot.wait_for(
            lambda since=start: bot.calls_since(since, "response_url"), what=f"the fit answer in {team}"
        )
        assert expected in json.dumps(answer[-1].args)
    start = len(bot.slack.calls)
    beta_asks = Workspace(team_id=BETA, bot_user_id="U0BOT").slash_command(
        "Acme Corp", bot.slack.response_url()
    )
    assert bot.sender.command(beta_asks).status == 200
    answer = bot.wait_for(lambda: bot.calls_since(start, "response_url"), what="Beta's answer about Acme")
    assert "couldn't find an account" in answer[-1].args["text"]  # Acme is Alpha's, not Beta's

    # The digest of each counts its own outcomes.
    for team, expected_counts in ((ALPHA, (0, 1)), (BETA, (1, 0))):
        done = _cli(bot, team, "digest", "--json", "--as-of", "2025-11-03")
        assert done.returncode == 0, done.stderr
        tiers = json.loads(done.stdout)["by_tier"].values()
        assert (sum(t["wins"] for t in tiers), sum(t["losses"] for t in tiers)) == expected_counts, team


def test_a_workspace_without_an_installation_gets_nothing(oauth_bot: RunningBot) -> None:
    bot = oauth_bot
    stranger = Workspace(team_id=STRANGER, bot_user_id="U0BOT")
    ts = bot.next_ts()
    assert (
        bot.sender.event(
            stranger.event_callback(stranger.message(DEALS, "Lost Acme Corp to Gong", ts))
        ).status
        == 200
    )
    start = len(bot.slack.calls)
    delivery = bot.sender.command(stranger.slash_command("Acme Corp", bot.slack.response_url()))
    assert delivery.status in {200, 401}
    bot.settle(1.0)
    # At most Bolt's own "this app's installation is not available" notice; no fit answer.
    answers = [json.dumps(c.args) for c in bot.calls_since(start, "response_url")]
    assert all("installation" in a and "Acme" not in a and "score" not in a for a in answers), answers
    for team in (ALPHA, BETA, STRANGER):
        assert ts not in {n["ts"] for n in _notes(bot, team)}


def test_uninstall_removes_the_token_and_the_data_of_that_workspace_only(oauth_bot: RunningBot) -> None:
    bot = oauth_bot
    beta = Workspace(team_id=BETA, bot_user_id="U0BOT")
    ts = bot.next_ts()
    assert (
        bot.sender.event(beta.event_callback(beta.message(DEALS, "Lost Globex to Gong on price", ts))).status
        == 200
    )
    bot.wait_for(lambda: ts in {n["ts"] for n in _notes(bot, BETA)}, what="Beta's note")
    alpha_before = _notes(bot, ALPHA)
    bot.slack.revoke(BETA)
    assert bot.sender.event(beta.event_callback({"type": "app_uninstalled"})).status == 200
    bot.wait_for(lambda: "its data was deleted" in bot.log(), what="the uninstall")
    assert _notes(bot, BETA) == []
    listed = _cli(bot, BETA, "accounts", "list", "--json")
    assert "Globex" not in listed.stdout
    assert _notes(bot, ALPHA) == alpha_before
    later = bot.next_ts()
    assert (
        bot.sender.event(beta.event_callback(beta.message(DEALS, "Lost Globex again", later))).status == 200
    )
    bot.settle(1.0)
    assert _notes(bot, BETA) == []
