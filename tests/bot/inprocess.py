"""The listeners' services built in-process against the Slack stand-in, for handler-level tests."""

from __future__ import annotations

from collections.abc import Iterable

from slack_sdk import WebClient
from sqlalchemy.orm import Session, sessionmaker

from bot.access import AdminDirectory
from bot.context import AppContext
from bot.services import BotServices, CaptureChannels, TaggerHolder
from bot.settings import Settings
from bot.standin import SlackStandIn
from insights.config import Config
from insights.service import account_name_keys, build_tagger


class QuietTagger(TaggerHolder):
    """The warm tagger, without the background rebuild after a correction (it would outlive the test)."""

    refreshes = 0

    def refresh_soon(self) -> None:
        self.refreshes += 1


def make_services(
    session_factory: sessionmaker[Session],
    config: Config,
    slack: SlackStandIn,
    *,
    team: str = "T1",
    admins: Iterable[str] = (),
    channels: Iterable[str] = ("C0DEALS",),
) -> BotServices:
    ctx = AppContext(Settings.from_env(), session_factory.kw["bind"], session_factory, config, team)
    client = WebClient(token=slack.token, base_url=slack.base_url)
    tagger = QuietTagger(
        lambda: build_tagger(session_factory, team, config.taxonomy),
        lambda: 0,
        lambda: account_name_keys(session_factory, team),
    )
    return BotServices(
        ctx=ctx,
        client=client,
        tagger=tagger,
        channels=CaptureChannels(list(channels), client),
        workspace_url="https://standin.slack.test/",
        bot_user_id=slack.bot_user_id,
        admins=AdminDirectory(admins, client),
    )
