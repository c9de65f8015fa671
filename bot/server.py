"""HTTP mode: Slack's requests on POST /slack/events, a health check on GET /healthz, served by
waitress (a production WSGI server: thread pool, request size limits, no debug reloader)."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import re
import signal
import threading
import time
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any

from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.request.internals import parse_body
from sqlalchemy import text

from bot.app import Bot
from bot.inbox import event_row

log = logging.getLogger("icp_bot")

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
MAX_BODY = 1_000_000  # bytes; Slack's largest payloads (a 40,000-character message) are far below
MAX_CLOCK_SKEW = 300  # seconds: Slack's own rule for a request's timestamp (replays are refused)
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")
_INVALID_SIGNATURE = b'{"ok":false,"error":"invalid request signature"}'

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _json(start_response: StartResponse, status: str, payload: dict[str, Any]) -> list[bytes]:
    return _answer(start_response, status, json.dumps(payload).encode())


def _answer(start_response: StartResponse, status: str, body: bytes) -> list[bytes]:
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def _read_body(environ: dict[str, Any]) -> bytes:
    """The request body, put back for Bolt to read again."""
    body: bytes = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _signed_by_slack(secret: bytes, environ: dict[str, Any], body: bytes) -> bool:
    """Slack's request signature, checked before anything reads the body: a timestamp of whole
    seconds within five minutes of now, and `v0=` + HMAC-SHA256 of `v0:{timestamp}:{body}`.
    Headers of any other form are simply not a valid signature (never an error)."""
    timestamp = str(environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP") or "")
    signature = str(environ.get("HTTP_X_SLACK_SIGNATURE") or "")
    if not secret or not _TIMESTAMP.fullmatch(timestamp) or not _SIGNATURE.fullmatch(signature):
        return False
    if abs(time.time() - int(timestamp)) > MAX_CLOCK_SKEW:
        return False
    expected = hmac.new(secret, b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest("v0=" + expected, signature)


def _is_ssl_check(environ: dict[str, Any], body: bytes) -> bool:
    """Slack's certificate check (a form POST with ssl_check=1, answered 200 and otherwise ignored)."""
    return str(environ.get("CONTENT_TYPE") or "").startswith("application/x-www-form-urlencoded") and (
        body == b"ssl_check=1" or body.startswith(b"ssl_check=1&") or b"&ssl_check=1" in body
    )


def _str_or_absent(data: dict[str, Any], *keys: str) -> bool:
    return all(isinstance(data.get(key, ""), str) for key in keys)


def _slack_payload(environ: dict[str, Any], body: bytes) -> dict[str, Any] | None:
    """The body as Bolt will read it, when Bolt can route it: UTF-8 JSON or form data holding an
    object, and the fields Bolt's listener matchers index (`event.type`, `view`, `actions[].action_id`)
    of the types Slack sends. Bolt answers anything else with a 500 and a traceback."""
    content_type = str(environ.get("CONTENT_TYPE") or "").split(";")[0] or None
    try:
        data = parse_body(body.decode("utf-8"), content_type)
    except ValueError:  # not UTF-8, not JSON, or a `payload` field that is not JSON
        return None
    if not isinstance(data, dict) or not _str_or_absent(data, "type", "command", "callback_id"):
        return None
    event, view, actions = data.get("event", {}), data.get("view", {}), data.get("actions", [])
    if not isinstance(event, dict) or not _str_or_absent(event, "type", "subtype"):
        return None
    if not isinstance(view, dict) or not _str_or_absent(view, "callback_id", "type"):
        return None
    if not isinstance(actions, list) or not all(
        isinstance(a, dict) and _str_or_absent(a, "action_id", "block_id", "type") for a in actions
    ):
        return None
    return data


def _stored_event(bot: Bot, environ: dict[str, Any], payload: dict[str, Any]) -> tuple[str, bytes] | None:
    """A (verified) event_callback is stored here, before the ack, instead of in Bolt (which
    acknowledges events before its listeners run): (status, body) to answer, or None for Bolt."""
    if payload.get("type") != "event_callback" or event_row(payload) is None:
        return None
    retry = bool(environ.get("HTTP_X_SLACK_RETRY_NUM"))
    if not bot.inbox.accept(payload, retry=retry):  # the database is down and the spool is full
        return "503 Service Unavailable", b'{"ok":false,"error":"busy, retry later"}'
    return "200 OK", b""


def make_wsgi_app(bot: Bot) -> WSGIApp:
    slack = SlackRequestHandler(bot.app, path=EVENTS_PATH)
    engine = bot.ctx.engine
    secret = (bot.ctx.settings.slack_signing_secret or "").encode()
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
            body = _read_body(environ)
            if _is_ssl_check(environ, body):
                return _json(start_response, "200 OK", {"ok": True})
            if not _signed_by_slack(secret, environ, body):  # before anything reads the body
                return _answer(start_response, "401 Unauthorized", _INVALID_SIGNATURE)
            try:
                payload = _slack_payload(environ, body)
                if payload is not None:
                    stored = _stored_event(bot, environ, payload)
                    if stored is not None:
                        return _answer(start_response, *stored)
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
