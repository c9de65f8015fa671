"""HTTP mode: Slack's requests on POST /slack/events, a health check on GET /healthz, served by
waitress (a production WSGI server: thread pool, request size limits, no debug reloader)."""

from __future__ import annotations

import io
import json
import logging
import signal
import threading
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any

from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.request.internals import parse_body
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import text

from bot.app import Bot
from bot.inbox import event_row

log = logging.getLogger("icp_bot")

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
MAX_BODY = 1_000_000  # bytes; Slack's largest payloads (a 40,000-character message) are far below

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _json(start_response: StartResponse, status: str, payload: dict[str, Any]) -> list[bytes]:
    body = json.dumps(payload).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def _is_slack_shaped(environ: dict[str, Any]) -> bool:
    """Whether Bolt can read the body (put back for it): UTF-8 JSON or form data holding an object,
    whose `event`, if any, is an object. Bolt answers anything else with a 500 and a traceback."""
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    environ["wsgi.input"] = io.BytesIO(body)
    try:
        data = parse_body(body.decode("utf-8"), str(environ.get("CONTENT_TYPE") or "").split(";")[0] or None)
    except ValueError:  # not UTF-8, not JSON, or a `payload` field that is not JSON
        return False
    return isinstance(data, dict) and isinstance(data.get("event", {}), dict)


def _stored_event(bot: Bot, verifier: SignatureVerifier, environ: dict[str, Any]) -> tuple[str, bytes] | None:
    """An event_callback is verified and stored here, before the ack, instead of in Bolt (which
    acknowledges events before its listeners run): (status, body) to answer, or None for Bolt."""
    body: bytes = environ["wsgi.input"].getvalue()
    if not body.startswith(b"{") or b'"event_callback"' not in body:
        return None
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    if not isinstance(payload, dict) or event_row(payload) is None:
        return None
    timestamp = str(environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP") or "")
    signature = str(environ.get("HTTP_X_SLACK_SIGNATURE") or "")
    valid = timestamp.isdigit() and verifier.is_valid(
        body=body.decode("utf-8"), timestamp=timestamp, signature=signature
    )
    if not valid:
        return "401 Unauthorized", b'{"ok":false,"error":"invalid request signature"}'
    retry = bool(environ.get("HTTP_X_SLACK_RETRY_NUM"))
    if not bot.inbox.accept(payload, retry=retry):  # the database is down and the spool is full
        return "503 Service Unavailable", b'{"ok":false,"error":"busy, retry later"}'
    return "200 OK", b""


def make_wsgi_app(bot: Bot) -> WSGIApp:
    slack = SlackRequestHandler(bot.app, path=EVENTS_PATH)
    engine = bot.ctx.engine
    verifier = SignatureVerifier(bot.ctx.settings.slack_signing_secret or "")
    oauth_paths = (
        {bot.app.oauth_flow.install_path, bot.app.oauth_flow.redirect_uri_path}
        if bot.app.oauth_flow
        else set()
    )

    def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        if path == HEALTH_PATH and method in {"GET", "HEAD"}:
            try:
                with engine.connect() as connection:
                    connection.execute(text("SELECT 1"))
            except Exception as exc:
                log.warning("health check: the database is unavailable: %s", type(exc).__name__)
                return _json(
                    start_response, "503 Service Unavailable", {"ok": False, "database": "unavailable"}
                )
            return _json(start_response, "200 OK", {"ok": True, "database": "ok", "mode": bot.mode})
        if path in oauth_paths and method == "GET":  # the install page and Slack's redirect back
            return slack(environ, start_response)
        if path == EVENTS_PATH:
            if method != "POST":
                return _json(start_response, "405 Method Not Allowed", {"ok": False, "error": "use POST"})
            try:
                if _is_slack_shaped(environ):
                    stored = _stored_event(bot, verifier, environ)
                    if stored is not None:
                        status, answer = stored
                        start_response(
                            status,
                            [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))],
                        )
                        return [answer]
                    return slack(environ, start_response)
            except (ValueError, TypeError, AttributeError, LookupError):  # odd fields Bolt trips over
                pass
            log.warning("answered 400 to a POST %s whose body is not a Slack request", EVENTS_PATH)
            return _json(start_response, "400 Bad Request", {"ok": False, "error": "not a Slack request"})
        return _json(start_response, "404 Not Found", {"ok": False, "error": "not found"})

    return application


def serve_http(bot: Bot, *, host: str = "0.0.0.0", port: int = 3000, threads: int = 8) -> None:
    """Serve until SIGTERM/SIGINT, then finish in-flight requests and stop."""
    from waitress.server import create_server

    server = create_server(
        make_wsgi_app(bot),
        host=host,
        port=port,
        threads=threads,
        max_request_body_size=MAX_BODY,
        ident="icp-bot",
        clear_untrusted_proxy_headers=True,
    )
    stopping = threading.Event()

    def stop(signum: int, _: FrameType | None) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stopping.set()
        server.close()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    bot.start_scheduler()
    log.info(
        "icp-bot is listening on http://%s:%s%s (health: %s; workspace data: %s)",
        host, server.effective_port, EVENTS_PATH, HEALTH_PATH, bot.serves,
    )  # fmt: skip
    try:
        server.run()
    except OSError:
        if not stopping.is_set():
            raise
    finally:
        bot.shutdown()
