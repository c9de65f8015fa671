"""The composition root of the Slack app: settings -> engine -> services -> Bolt App -> scheduler.

    bot = build_bot(Settings.from_env(), mode="http")
    serve_http(bot, port=3000)        # or run_socket_mode(bot)

Everything the listeners need is built here once (the warm tagger, the channel directory, the
Web API client with its retry handlers) and passed in; nothing is looked up from globals.
"""

from __future__ import annotations

import logging
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType
from typing import Literal
from urllib.error import URLError

from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError

from bot import surface
from bot.access import AdminDirectory
from bot.context import AppContext, build_context, database_error
from bot.digest_jobs import JOB_ID as DIGEST_JOB_ID
from bot.digest_jobs import DigestPoster, catch_up, schedule_digest
from bot.history import HistoryCatchUp, schedule_history_catch_up
from bot.inbox import EventInbox, event_row
from bot.listeners import register_all
from bot.listeners.events import handle_event_body
from bot.retention_jobs import schedule_retention
from bot.services import BotServices, CaptureChannels, TaggerHolder, explain_slack_error, slack_error_code
from bot.settings import Settings
from bot.workspaces import Workspaces
from insights.errors import UserError
from insights.privacy import delete_workspace_data
from insights.service import account_name_keys, build_tagger, tagging_data_version
from storage.repositories import WorkspaceRepository

log = logging.getLogger("icp_bot")

Mode = Literal["http", "socket"]
SLACK_API_URL = "https://slack.com/api/"
TAGGER_REFRESH_MINUTES = 10


class StartupError(UserError):
    """The bot cannot start: a missing or malformed setting, or Slack refused the token."""


@dataclass
class Bot:
    app: App
    workspaces: Workspaces
    ctx: AppContext  # settings, engine and config shared by every workspace
    scheduler: BackgroundScheduler
    mode: Mode
    inbox: EventInbox
    digest: DigestPoster | None = None

    @property
    def services(self) -> BotServices:
        """The one workspace's services (a bot-token install; the demo and tests use this)."""
        if self.workspaces.single is None:
            raise RuntimeError("this bot serves several workspaces: use bot.workspaces.for_team()")
        return self.workspaces.single

    @property
    def serves(self) -> str:
        """For the start-up line: the workspace whose data it serves, or 'installed workspaces'."""
        return self.workspaces.single.team_id if self.workspaces.single else "every installed workspace"

    def start_scheduler(self) -> None:
        """Start the background work: the event worker (what is pending from before first), the
        scheduled jobs, and the digest catch-up."""
        self.inbox.start()
        if not self.scheduler.running:
            self.scheduler.start()
            if self.digest is not None:  # a digest due while the bot was down
                poster = self.digest
                threading.Thread(
                    target=lambda: catch_up(poster, datetime.now(UTC)), name="digest-catch-up", daemon=True
                ).start()

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        for services in self.workspaces.built():  # a catch-up in progress ends at its next page
            history = _CATCH_UPS.pop(services.team_id, None)
            if history is not None:
                history.stop()
        self.inbox.stop()
        self.ctx.engine.dispose()


# ---------------------------------------------------------------------------------------------
# Settings checks: refuse to start with a message that names the variable to set


_TOKEN_SHAPES = {
    "SLACK_BOT_TOKEN": (
        "xoxb-",
        "the Bot User OAuth Token (xoxb-…) from your app's OAuth & Permissions page",
    ),
    "SLACK_APP_TOKEN": (
        "xapp-",
        "an app-level token (xapp-…) with connections:write, from Basic Information",
    ),
}


def _check_token(name: str, value: str | None) -> str:
    prefix, where = _TOKEN_SHAPES[name]
    if not value:
        raise StartupError(f"{name} is not set: set it to {where}")
    if not value.startswith(prefix) or re.search(r"\s", value) or len(value) < len(prefix) + 8:
        shown = f" (it starts with '{value[:5]}…')" if len(value) > 15 else ""  # never the whole value
        raise StartupError(f"{name} does not look like a token{shown}: set it to {where}")
    return value


def check_slack_settings(settings: Settings, mode: Mode | Literal["post"]) -> None:
    """Refuse missing or malformed Slack settings; "post" (a digest from the CLI) needs only the bot token."""
    _check_token("SLACK_BOT_TOKEN", settings.slack_bot_token)
    if mode == "post":
        pass
    elif mode == "socket":
        _check_token("SLACK_APP_TOKEN", settings.slack_app_token)
    else:
        secret = settings.slack_signing_secret
        if not secret:
            raise StartupError(
                "SLACK_SIGNING_SECRET is not set: HTTP mode needs the Signing Secret from your app's "
                "Basic Information page (or set SLACK_APP_TOKEN to use Socket Mode instead)"
            )
        if re.search(r"\s", secret) or len(secret) < 16:
            raise StartupError(
                "SLACK_SIGNING_SECRET does not look like a signing secret (32 hex characters on the app's "
                "Basic Information page)"
            )
    url = settings.slack_api_url
    if url and not re.match(r"^https?://[^\s/]+", url):
        raise StartupError(f"SLACK_API_URL must be an http(s) URL like https://slack.com/api/, not '{url}'")


def choose_mode(settings: Settings, requested: Mode | None) -> Mode:
    """Socket Mode when asked for or when SLACK_APP_TOKEN is set; HTTP otherwise."""
    if requested is not None:
        return requested
    return "socket" if settings.slack_app_token else "http"


def make_web_client(settings: Settings, *, token: str | None = None) -> WebClient:
    """The Web API client: SLACK_API_URL (with the trailing slash slack-sdk needs) and retries on
    connection errors, 429 + Retry-After and 5xx answers. `token`: an installed workspace's."""
    base_url = (settings.slack_api_url or SLACK_API_URL).rstrip("/") + "/"
    return WebClient(
        token=token or settings.slack_bot_token,
        base_url=base_url,
        timeout=15,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=4),
            ServerErrorRetryHandler(max_retry_count=2),
        ],
    )


def _who_am_i(client: WebClient) -> dict[str, str]:
    sdk_log = logging.getLogger("slack_sdk.web.base_client")
    level = sdk_log.level
    sdk_log.setLevel(logging.CRITICAL)  # a refusal is told in one line below, not in the SDK's retries
    try:
        me = client.auth_test()
    except SlackApiError as error:
        raise StartupError(
            f"Slack refused SLACK_BOT_TOKEN at start: {explain_slack_error(error, 'the app')}"
        ) from None
    except (URLError, OSError) as error:
        raise StartupError(
            f"cannot reach Slack's Web API at {client.base_url}: {getattr(error, 'reason', error)}; "
            "check the network or SLACK_API_URL"
        ) from None
    finally:
        sdk_log.setLevel(level)
    return {k: str(me.get(k) or "") for k in ("team_id", "team", "user_id", "bot_id", "url")}


def _data_team(ctx: AppContext, settings: Settings, slack_team: str, slack_team_name: str) -> str:
    """The workspace whose data the bot serves: ICP_BOT_TEAM_ID, else the only workspace in the
    database (accounts imported with the CLI before Slack was connected), else Slack's team."""
    if settings.team_id:
        return settings.team_id
    with ctx.session_factory.begin() as session:
        repo = WorkspaceRepository(session)
        teams = repo.team_ids()
        if len(teams) == 1:
            return teams[0]
        if len(teams) > 1 and slack_team not in teams:
            raise StartupError(
                f"this database serves several workspaces ({', '.join(teams[:5])}) and none is the Slack "
                f"team {slack_team}; choose one with ICP_BOT_TEAM_ID"
            )
        repo.get_or_create(slack_team, slack_team_name or None)
    return slack_team


# ---------------------------------------------------------------------------------------------
# Building the app


def _drop_token_unused_warning(record: logging.LogRecord) -> bool:
    """Bolt warns that SLACK_BOT_TOKEN "will be unused" when a client is passed: the client holds it."""
    return "will be unused" not in record.getMessage()


def _workspace_services(ctx: AppContext, client: WebClient, me: dict[str, str]) -> BotServices:
    """One workspace's services: its client, its warm tagger over its own accounts, its channels."""
    team_id = ctx.team_id
    started = time.perf_counter()
    tagger = TaggerHolder(
        lambda: build_tagger(ctx.session_factory, team_id, ctx.config.taxonomy),
        lambda: tagging_data_version(ctx.session_factory, team_id),
        lambda: account_name_keys(ctx.session_factory, team_id),
    )
    log.info("tagger for %s ready in %.1f s", team_id, time.perf_counter() - started)
    capture = ctx.config.capture
    return BotServices(
        ctx=ctx,
        client=client,
        tagger=tagger,
        channels=CaptureChannels(list(capture.channels), client),
        workspace_url=me["url"] or "https://slack.com/",
        bot_user_id=me["user_id"],
        confirm_mode=capture.confirm,
        allowed_bots=frozenset(b.lower() for b in capture.bots),
        admins=AdminDirectory(ctx.config.admins, client),
    )


# Any constant: the PostgreSQL advisory lock replicas take while creating library tables.
_DDL_LOCK = 0x1C9B07


def serialised_ddl(engine: Engine, create: Callable[[], None]) -> None:
    """Create tables that libraries own (APScheduler's, slack-sdk's) one process at a time:
    replicas starting together on PostgreSQL would otherwise race (`CREATE TABLE` after both
    checked) and one would die on a duplicate key in pg_type."""
    if engine.dialect.name != "postgresql":
        create()
        return
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _DDL_LOCK})
        try:
            create()
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _DDL_LOCK})
            connection.commit()


def _make_scheduler(ctx: AppContext) -> BackgroundScheduler:
    # The digest's job lives in the product's database, so a run missed while the bot was down is
    # found (and posted within the grace period) when it comes back; the rest is per process.
    jobs = SQLAlchemyJobStore(engine=ctx.engine, tablename="apscheduler_jobs")
    serialised_ddl(ctx.engine, lambda: jobs.jobs_t.create(ctx.engine, checkfirst=True))
    scheduler = BackgroundScheduler(
        timezone="UTC",
        jobstores={"default": jobs, "process": MemoryJobStore()},
        job_defaults={"coalesce": True, "max_instances": 1},
    )
    schedule_retention(scheduler, ctx)
    return scheduler


def _serve_workspace(scheduler: BackgroundScheduler, services: BotServices) -> DigestPoster:
    """The per-workspace jobs: the tagger refresh and the weekly digest."""
    scheduler.add_job(
        services.tagger.refresh,
        "interval",
        minutes=TAGGER_REFRESH_MINUTES,
        kwargs={"only_if_changed": True},
        id=f"tagger-refresh-{services.team_id}",
        jobstore="process",
        replace_existing=True,
    )
    poster = DigestPoster(services.ctx, services.client)
    schedule_digest(scheduler, poster)
    # What the capture channels got while the bot was down: read from history at start, on a
    # schedule, and when the database comes back after an outage.
    _CATCH_UPS[services.team_id] = schedule_history_catch_up(scheduler, services)
    return poster


_CATCH_UPS: dict[str, HistoryCatchUp] = {}


def _catch_up_after_outage() -> None:
    for history in list(_CATCH_UPS.values()):
        threading.Thread(target=history.run, name="history-catch-up", daemon=True).start()


def _stop_workspace_jobs(scheduler: BackgroundScheduler, team_id: str) -> None:
    stopped = _CATCH_UPS.pop(team_id, None)
    if stopped is not None:
        stopped.stop()
    for job_id in (
        f"tagger-refresh-{team_id}",
        DIGEST_JOB_ID.format(team=team_id),
        f"history-catch-up-{team_id}",
        f"history-catch-up-start-{team_id}",
    ):
        if scheduler.get_job(job_id) is not None:
            scheduler.remove_job(job_id)


def _bolt_logger() -> logging.Logger:
    bolt_logger = logging.getLogger("icp_bot.bolt")
    bolt_logger.addFilter(_drop_token_unused_warning)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    return bolt_logger


def _forget_data_if_asked(ctx: AppContext, team_id: str) -> None:
    """retention.on_uninstall: delete removes the workspace's data when Slack says it left."""
    if ctx.config.retention.on_uninstall != "delete":
        log.info("workspace %s: its data is kept (retention.on_uninstall: keep)", team_id)
        return
    deleted = delete_workspace_data(ctx.session_factory, team_id)
    log.warning("workspace %s: its data was deleted (retention.on_uninstall: delete): %s", team_id, deleted)


def build_bot(
    settings: Settings,
    *,
    mode: Mode,
    process_before_response: bool = False,
    client: WebClient | None = None,
) -> Bot:
    """Everything the running bot needs, checked before anything is served."""
    if settings.oauth_enabled:
        return _build_oauth_bot(
            settings, mode=mode, process_before_response=process_before_response, client=client
        )
    check_slack_settings(settings, mode)
    client = client or make_web_client(settings)
    me = _who_am_i(client)  # before the database: a refused token is told without migration logs
    ctx = build_context(settings)
    try:
        team_id = _data_team(ctx, settings, me["team_id"], me["team"])
    except DBAPIError as exc:
        raise database_error(settings.database_url, exc) from None
    ctx = AppContext(ctx.settings, ctx.engine, ctx.session_factory, ctx.config, team_id)
    services = _workspace_services(ctx, client, me)
    app = App(
        client=client,
        signing_secret=settings.slack_signing_secret or "",
        request_verification_enabled=mode == "http",
        process_before_response=process_before_response,
        ignoring_self_events_enabled=True,
        logger=_bolt_logger(),
    )
    workspaces = Workspaces.one(services)
    workspaces.on_uninstall = lambda team: _forget_data_if_asked(ctx, team_id)
    register_all(app, workspaces)
    scheduler = _make_scheduler(ctx)
    inbox = EventInbox(
        ctx.session_factory,
        lambda body: handle_event_body(body, workspaces),
        on_database_back=_catch_up_after_outage,
    )
    scheduler.add_job(inbox.purge, "interval", hours=1, id="inbox-purge", jobstore="process")
    poster = _serve_workspace(scheduler, services)
    return Bot(app, workspaces, ctx, scheduler, mode, inbox, poster)


def check_oauth_settings(settings: Settings, mode: Mode) -> None:
    if mode != "http":
        raise StartupError(
            "OAuth installation (SLACK_CLIENT_ID + SLACK_CLIENT_SECRET) serves HTTP: run with --http, "
            "or set SLACK_BOT_TOKEN for a single workspace"
        )
    if not settings.slack_signing_secret:
        raise StartupError(
            "SLACK_SIGNING_SECRET is not set: OAuth installation runs in HTTP mode and needs it"
        )
    if not re.fullmatch(r"[0-9]+\.[0-9]+", settings.slack_client_id or ""):
        raise StartupError(
            "SLACK_CLIENT_ID does not look like a client ID "
            "(digits.digits, on the app's Basic Information page)"
        )
    url = settings.slack_api_url
    if url and not re.match(r"^https?://[^\s/]+", url):
        raise StartupError(f"SLACK_API_URL must be an http(s) URL like https://slack.com/api/, not '{url}'")


def _build_oauth_bot(
    settings: Settings, *, mode: Mode, process_before_response: bool, client: WebClient | None
) -> Bot:
    """Several workspaces: installed through /slack/install, tokens in the product's database."""
    from slack_bolt.oauth import OAuthFlow
    from slack_bolt.oauth.oauth_settings import OAuthSettings
    from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
    from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

    check_oauth_settings(settings, mode)
    client = client or make_web_client(settings)
    ctx = build_context(settings)
    client_id = str(settings.slack_client_id)
    installations = SQLAlchemyInstallationStore(client_id=client_id, engine=ctx.engine)
    states = SQLAlchemyOAuthStateStore(expiration_seconds=600, engine=ctx.engine)
    try:
        serialised_ddl(ctx.engine, installations.create_tables)  # slack-sdk's tables, if missing
        serialised_ddl(ctx.engine, states.create_tables)
    except DBAPIError as exc:
        raise database_error(settings.database_url, exc) from None
    oauth = OAuthFlow(
        client=client,
        settings=OAuthSettings(
            client_id=client_id,
            client_secret=settings.slack_client_secret,
            scopes=surface.bot_scopes(),
            redirect_uri=settings.slack_redirect_uri,
            installation_store=installations,
            installation_store_bot_only=True,
            state_store=states,
        ),
    )
    app = App(
        client=client,
        signing_secret=settings.slack_signing_secret or "",
        oauth_flow=oauth,
        process_before_response=process_before_response,
        ignoring_self_events_enabled=True,
        logger=_bolt_logger(),
    )
    scheduler = _make_scheduler(ctx)
    posters: dict[str, DigestPoster] = {}

    def build(team_id: str) -> BotServices | None:
        bot = installations.find_bot(enterprise_id=None, team_id=team_id)
        if bot is None or not bot.bot_token:
            return None
        team_client = make_web_client(settings, token=bot.bot_token)
        try:
            me = _who_am_i(team_client)
        except StartupError as error:
            log.warning("workspace %s: %s", team_id, error)
            return None
        with ctx.session_factory.begin() as session:
            WorkspaceRepository(session).get_or_create(team_id, me["team"] or None)
        team_ctx = AppContext(ctx.settings, ctx.engine, ctx.session_factory, ctx.config, team_id)
        services = _workspace_services(team_ctx, team_client, me)
        posters[team_id] = _serve_workspace(scheduler, services)
        return services

    def uninstalled(team_id: str) -> None:
        installations.delete_all(enterprise_id=None, team_id=team_id)
        _stop_workspace_jobs(scheduler, team_id)
        posters.pop(team_id, None)
        _forget_data_if_asked(ctx, team_id)

    workspaces = Workspaces(build=build, on_uninstall=uninstalled)
    with ctx.engine.connect() as connection:  # the workspaces installed so far, served from the start
        installed = sorted(
            {str(t) for t in connection.execute(select(installations.bots.c.team_id)).scalars() if t}
        )
    for team_id in installed:
        workspaces.for_team(team_id)
    register_all(app, workspaces)
    inbox = EventInbox(
        ctx.session_factory,
        lambda body: handle_event_body(body, workspaces),
        on_database_back=_catch_up_after_outage,
    )
    scheduler.add_job(inbox.purge, "interval", hours=1, id="inbox-purge", jobstore="process")
    log.info("OAuth installation: %d workspace(s) installed; install more at /slack/install", len(installed))
    return Bot(app, workspaces, ctx, scheduler, mode, inbox, None)


# ---------------------------------------------------------------------------------------------
# Running


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, _: FrameType | None) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)


def run_socket_mode(bot: Bot, app_token: str) -> None:
    """Connect over Socket Mode and serve until SIGTERM/SIGINT."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler
    from slack_bolt.adapter.socket_mode.internals import run_bolt_app, send_response
    from slack_bolt.response import BoltResponse
    from slack_sdk.socket_mode.builtin import SocketModeClient
    from slack_sdk.socket_mode.request import SocketModeRequest
    from slack_sdk.socket_mode.response import SocketModeResponse

    class AckingHandler(SocketModeHandler):
        """Bolt sends no ack when it answers an envelope with an error or "unhandled" (a payload
        it cannot read, an event nobody listens to): Slack would redeliver it. Ack every one."""

        def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
            started = time.time()
            if req.type == "events_api" and isinstance(req.payload, dict) and event_row(req.payload):
                # Stored before the ack and processed by the inbox worker, so a crash now loses
                # nothing; an event that could not be stored is not acked, and Slack redelivers it.
                if bot.inbox.accept(req.payload, retry=bool(req.retry_attempt)):
                    client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
                return
            try:
                response = run_bolt_app(self.app, req)
            except Exception:
                log.warning("could not handle a Socket Mode %s envelope", req.type, exc_info=True)
                response = BoltResponse(status=500)
            if response.status == 200:
                send_response(client, req, response, started)
            else:
                client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))

    socket_log = logging.getLogger("icp_bot.socket")
    handler = AckingHandler(bot.app, app_token, logger=socket_log)
    stop = threading.Event()
    _stop_on_signals(stop)
    level = socket_log.level
    socket_log.setLevel(logging.CRITICAL)  # a refusal is told in one line below
    try:
        handler.connect()  # type: ignore[no-untyped-call]
    except SlackApiError as error:
        raise StartupError(
            f"Slack refused SLACK_APP_TOKEN ({slack_error_code(error)}): set it to "
            f"{_TOKEN_SHAPES['SLACK_APP_TOKEN'][1]}"
        ) from None
    finally:
        socket_log.setLevel(level)
    bot.start_scheduler()
    log.info("icp-bot is running in Socket Mode (workspace data: %s)", bot.serves)
    try:
        stop.wait()
    finally:
        handler.close()  # type: ignore[no-untyped-call]
        bot.shutdown()
