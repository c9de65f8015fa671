"""Running `icp-bot run` as a subprocess against the local Slack stand-in, in either mode.

    with RunningBot.start(tmp_path, mode="http") as bot:
        bot.sender.command(bot.workspace.slash_command("Acme", bot.slack.response_url()))
        bot.wait_for(lambda: bot.slack.calls_to("response_url"))

The bot gets its own SQLite database (or a PostgreSQL schema URL), the sample accounts and a
config that captures #deals (C0DEALS) and #churn (by name) and accepts posts of the Salesforce bot.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

from bot.payloads import SlackSender, Workspace
from bot.settings import bundled_resource
from bot.standin import RecordedCall, SlackStandIn

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
ICP_BOT = [sys.executable, "-m", "bot"]
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(folder: Path, *, confirm: str = "thread", extra: str = "") -> Path:
    """The bundled example config, capturing #deals and #churn and trusting the Salesforce bot;
    the ICP admins are U0LEAD and the members of the user group S0ICPADMINS."""
    text = bundled_resource("icp.example.yml").read_text(encoding="utf-8")
    old = "  confirm: thread          # thread | reaction | ephemeral\n"
    assert old in text, "the example config changed; update tests/bot/blackbox.py"
    text = text.replace(old, f"  confirm: {confirm}\n  bots: [Salesforce]\n")
    text += "\nadmins: [U0LEAD, S0ICPADMINS]\n"
    path = folder / "icp.yml"
    text += extra
    path.write_text(text, encoding="utf-8")
    return path


def db_upgrade(database_url: str, cwd: Path | None = None) -> None:
    """`icp-bot db upgrade`, as an operator runs it before starting on a server database (the bot
    never migrates one implicitly)."""
    done = subprocess.run(
        [*ICP_BOT, "db", "upgrade"],
        env={"DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"},
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def _launch(folder: Path, env: dict[str, str], mode: str, port: int) -> subprocess.Popen[bytes]:
    log = (folder / "bot.log").open("ab")  # a restarted bot appends to the same log
    return subprocess.Popen(
        [*ICP_BOT, "run", f"--{mode}", "--port", str(port), "--host", "127.0.0.1"],
        env=env,
        cwd=folder,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


class Replica:
    """Another `icp-bot run --http` process beside a RunningBot: same database, same Slack
    stand-in, same environment, its own port and log (several replicas behind a load balancer)."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.port = folder, free_port()
        self.process = _launch(folder, env, "http", self.port)
        self.sender = SlackSender(url=f"http://127.0.0.1:{self.port}/slack/events", secret=SECRET)
        deadline = time.monotonic() + 60
        while not _healthy(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"the replica did not come up:\n{self.log()}")
            time.sleep(0.1)

    def log(self) -> str:
        path = self.folder / "bot.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def stop(self) -> int | None:
        return _terminate(self.process)


def _terminate(process: subprocess.Popen[bytes]) -> int | None:
    """Stop a bot process as an orchestrator would: SIGTERM, then SIGKILL after 20 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


class RunningBot:
    def __init__(  # noqa: PLR0917 - built only by start()
        self,
        folder: Path,
        slack: SlackStandIn,
        process: subprocess.Popen[bytes],
        env: dict[str, str],
        sender: SlackSender,
        mode: str,
        port: int,
    ) -> None:
        self.folder, self.slack, self.process, self.env = folder, slack, process, env
        self.sender, self.mode, self.port = sender, mode, port
        self.workspace = Workspace(team_id=slack.team_id, bot_user_id=slack.bot_user_id)
        self._ts = 1_761_900_000

    @classmethod
    def start(
        cls,
        folder: Path,
        *,
        mode: Literal["http", "socket"],
        database_url: str | None = None,
        confirm: str = "thread",
        extra_env: dict[str, str] | None = None,
        extra_config: str = "",
    ) -> RunningBot:
        folder.mkdir(parents=True, exist_ok=True)
        slack = SlackStandIn().start()
        ours = ("SLACK_", "ICP_BOT_", "DATABASE_URL", "PORT")
        env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
        env |= {
            "SLACK_BOT_TOKEN": slack.token,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": slack.base_url,
            "DATABASE_URL": database_url or f"sqlite:///{folder / 'bot.db'}",
            "ICP_BOT_CONFIG": str(write_config(folder, confirm=confirm, extra=extra_config)),
            "ICP_BOT_LOG_LEVEL": "INFO",
            **(extra_env or {}),
        }
        if mode == "socket":
            env["SLACK_APP_TOKEN"] = slack.app_token
        accounts = bundled_resource("sample_accounts.csv")
        command = [*ICP_BOT, "accounts", "import", str(accounts)]
        imported = subprocess.run(command, env=env, cwd=folder, capture_output=True, check=False)
        assert imported.returncode == 0, imported.stderr.decode()
        port = free_port()
        process = _launch(folder, env, mode, port)
        sender = (
            SlackSender(standin=slack)
            if mode == "socket"
            else SlackSender(url=f"http://127.0.0.1:{port}/slack/events", secret=SECRET)
        )
        bot = cls(folder, slack, process, env, sender, mode, port)
        try:
            bot._wait_until_up()
        except BaseException:
            bot.stop()
            raise
        return bot

    def _wait_until_up(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"icp-bot run exited with {self.process.returncode}:\n{self.log()}")
            if self.mode == "socket":
                if self.slack.wait_connected(timeout=0.2):
                    return
            elif _healthy(self.port):
                return
            else:
                time.sleep(0.1)
        raise AssertionError(f"icp-bot run did not come up in {timeout} s:\n{self.log()}")

    def replica(self, name: str = "replica") -> Replica:
        """Start a second HTTP process on the same database and stand-in (stop it when done)."""
        assert self.mode == "http", "replicas serve HTTP"
        return Replica(self.folder / name, self.env)

    def stop_process(self) -> int | None:
        """Stop the bot as an orchestrator would (SIGTERM); the stand-in stays up."""
        return _terminate(self.process)

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, nothing in flight is finished."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def restart(self) -> None:
        """Start the bot again on the same port, database and stand-in (after stop_process or kill)."""
        assert self.process.poll() is not None, "stop or kill the bot first"
        self.process = _launch(self.folder, self.env, self.mode, self.port)
        self._wait_until_up()

    def stop(self) -> int | None:
        code = self.stop_process()
        self.slack.stop()
        return code

    def __enter__(self) -> RunningBot:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- helpers for tests ---------------------------------------------------------------------

    def log(self) -> str:
        path = self.folder / "bot.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def next_ts(self) -> str:
        """A fresh, realistic message ts (tests share one running bot)."""
        self._ts += 7
        return f"{self._ts}.000{self._ts % 1000:03d}"

    def wait_for(self, check: Callable[[], T | None], timeout: float = 30.0, what: str = "the bot") -> T:
        """Poll `check` until it returns something truthy; fail with the bot's log on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; bot log:\n{self.log()[-4000:]}")
            time.sleep(0.05)

    def calls_since(self, start: int, method: str | None = None) -> list[RecordedCall]:
        calls = self.slack.calls[start:]
        return [c for c in calls if method is None or c.method == method]

    def settle(self, seconds: float = 0.5) -> None:
        """Give background handlers time to make calls they should NOT make (for negative checks)."""
        time.sleep(seconds)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*ICP_BOT, *args], env=self.env, cwd=self.folder, capture_output=True, text=True, check=False
        )

    def notes(self) -> list[dict[str, Any]]:
        """`icp-bot notes export`, parsed."""
        done = self.cli("notes", "export")
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]

    def note_for(self, ts: str, channel: str = "C0DEALS") -> dict[str, Any] | None:
        return next((n for n in self.notes() if n["ts"] == ts and n["channel"] == channel), None)
