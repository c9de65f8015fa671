"""Settings from the environment (and a `.env` file in the working directory)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from dotenv import load_dotenv

from storage.engine import DEFAULT_DATABASE_URL

DEFAULT_CONFIG_NAME = "icp.yml"


def bundled_resource(name: str) -> Path:
    """A file shipped inside the package (works in an editable checkout and when installed)."""
    return Path(str(resources.files("bot") / "resources" / name))


@dataclass(frozen=True, repr=False)
class Settings:
    database_url: str
    config_path: Path
    config_is_bundled: bool
    team_id: str | None
    log_level: str
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_api_url: str | None = None
    # OAuth installation (several workspaces): used when SLACK_CLIENT_ID and SLACK_CLIENT_SECRET
    # are set and SLACK_BOT_TOKEN is not.
    slack_client_id: str | None = None
    slack_client_secret: str | None = None
    slack_redirect_uri: str | None = None

    @property
    def oauth_enabled(self) -> bool:
        return bool(self.slack_client_id and self.slack_client_secret and not self.slack_bot_token)

    @classmethod
    def from_env(cls, *, config: str | None = None, team: str | None = None) -> Settings:
        # Real environment variables win over .env, as twelve-factor tools expect.
        load_dotenv(Path.cwd() / ".env", override=False)
        chosen = config or os.environ.get("ICP_BOT_CONFIG")
        if chosen:
            config_path, bundled = Path(chosen).expanduser(), False
        elif (Path.cwd() / DEFAULT_CONFIG_NAME).exists():
            config_path, bundled = Path.cwd() / DEFAULT_CONFIG_NAME, False
        else:
            config_path, bundled = bundled_resource("icp.example.yml"), True
        return cls(
            database_url=os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            config_path=config_path,
            config_is_bundled=bundled,
            team_id=team or os.environ.get("ICP_BOT_TEAM_ID") or None,
            log_level=(os.environ.get("ICP_BOT_LOG_LEVEL") or "INFO").upper(),
            slack_bot_token=_secret("SLACK_BOT_TOKEN"),
            slack_signing_secret=_secret("SLACK_SIGNING_SECRET"),
            slack_app_token=_secret("SLACK_APP_TOKEN"),
            slack_api_url=(os.environ.get("SLACK_API_URL") or "").strip() or None,
            slack_client_id=(os.environ.get("SLACK_CLIENT_ID") or "").strip() or None,
            slack_client_secret=_secret("SLACK_CLIENT_SECRET"),
            slack_redirect_uri=(os.environ.get("SLACK_REDIRECT_URI") or "").strip() or None,
        )

    def __repr__(self) -> str:  # secrets never reach a log line or a traceback
        hidden = {"slack_bot_token", "slack_signing_secret", "slack_app_token", "slack_client_secret"}
        shown = ", ".join(f"{k}={'***' if k in hidden and v else v!r}" for k, v in self.__dict__.items())
        return f"Settings({shown})"


def _secret(name: str) -> str | None:
    return (os.environ.get(name) or "").strip() or None
