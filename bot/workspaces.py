"""The workspaces one process serves, and the services each request gets.

With a bot token (SLACK_BOT_TOKEN) there is one workspace and every request gets its services.
With OAuth installation (SLACK_CLIENT_ID + SLACK_CLIENT_SECRET) every installed workspace gets
its own: a Web API client with that workspace's token, its tagger over its own accounts, its
capture channels, and an `AppContext` whose `team_id` scopes every query. A request from a
workspace that has no installation gets nothing, so it can neither read nor write any rows.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from slack_bolt import Ack, BoltContext

from bot.services import BotServices

log = logging.getLogger("icp_bot")


class Workspaces:
    def __init__(
        self,
        *,
        single: BotServices | None = None,
        build: Callable[[str], BotServices | None] | None = None,
        on_forget: Callable[[BotServices], None] | None = None,
        on_uninstall: Callable[[str], None] | None = None,
    ) -> None:
        if (single is None) == (build is None):
            raise ValueError("give either one workspace's services or a way to build them per team")
        self._single = single
        self._build = build
        self._on_forget = on_forget
        self.on_uninstall = on_uninstall
        self._built: dict[str, BotServices] = {}
        self._lock = threading.Lock()
        self._building: dict[str, threading.Lock] = {}

    @classmethod
    def one(cls, services: BotServices) -> Workspaces:
        return cls(single=services)

    @property
    def single(self) -> BotServices | None:
        """The one workspace of a bot-token install; None with OAuth."""
        return self._single

    def for_team(self, team_id: str | None) -> BotServices | None:
        """The services for a request from `team_id`; None when this process does not serve it."""
        if self._single is not None:
            return self._single
        if not team_id or self._build is None:
            return None
        with self._lock:
            found = self._built.get(team_id)
            if found is not None:
                return found
            building = self._building.setdefault(team_id, threading.Lock())
        with building:  # one build per workspace, others wait for it (a tagger takes a moment)
            with self._lock:
                found = self._built.get(team_id)
            if found is not None:
                return found
            services = self._build(team_id)
            if services is not None:
                with self._lock:
                    self._built[team_id] = services
            return services

    def for_request(self, context: BoltContext, ack: Ack) -> BotServices | None:
        """The services for a command, action or view; acknowledges and explains when none."""
        services = self.for_team(context.team_id)
        if services is None and ack.response is None:
            ack(text="icp-bot is not set up for this workspace; ask a Slack admin to install it again.")
        return services

    def uninstall(self, team_id: str | None) -> None:
        """Slack says the app was uninstalled (or its bot token revoked) in `team_id`."""
        if not team_id:
            return
        log.warning("Slack says icp-bot was uninstalled or its token revoked in workspace %s", team_id)
        if self.on_uninstall is not None:
            self.on_uninstall(team_id)
        self.forget(team_id)

    def built(self) -> list[BotServices]:
        if self._single is not None:
            return [self._single]
        with self._lock:
            return list(self._built.values())

    def forget(self, team_id: str) -> None:
        """Drop a workspace's services (it uninstalled the app or its token was revoked)."""
        with self._lock:
            services = self._built.pop(team_id, None)
        if services is not None and self._on_forget is not None:
            self._on_forget(services)
