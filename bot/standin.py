"""A local Slack Web API: a real HTTP server on 127.0.0.1 for tests and the demo.

It answers the Web API methods the bot calls, records every call (method, arguments, headers),
keeps the messages it was sent per channel, serves `response_url`s and the three-step file
upload, and fails on demand: `rate_limit_next` answers HTTP 429 with Retry-After,
`fail_next` answers `ok: false` with a Slack error code, `delay_next` answers late (a slow Web
API, or one the client gives up on). `post_history`, `post_reply` and `edit_history` arrange what
a channel said while the bot was not listening; conversations.history (newest first) and
conversations.replies (oldest first) serve it as Slack does, with `oldest`, `latest`,
`inclusive`, `limit` and `cursor`. Nothing here talks to real Slack.

    with SlackStandIn() as slack:
        client = WebClient(token=slack.token, base_url=slack.base_url)
        client.chat_postMessage(channel="C0DEALS", text="hi")
        assert slack.calls_to("chat.postMessage")[0].args["text"] == "hi"

Socket Mode is here too. `apps.connections.open` (with the app-level token) hands out a
single-use `ws://127.0.0.1:<port>/link/?ticket=...` URL; the WebSocket server behind it greets
each connection with Slack's `hello`, and tests push envelopes to the bot and read its acks:

    with SlackStandIn() as slack:
        web = WebClient(token=slack.token, base_url=slack.base_url)
        client = SocketModeClient(app_token=slack.app_token, web_client=web)
        client.connect()
        assert slack.wait_connected()
        envelope_id = slack.push_envelope("events_api", {"type": "event_callback", "event": {...}})
        assert slack.wait_for_ack(envelope_id) == {"envelope_id": envelope_id}
        client.close()

`disconnect_sockets` sends Slack's `disconnect` message and closes the sockets, as Slack does
before it restarts a server; `close_sockets` closes them without it. `unacked` and `ack_errors`
say what the bot left unanswered or answered wrongly. Every connect is recorded in `calls` as
"socket.connect". (slack-sdk's builtin client takes up to 4 s to close() while connected; the
tests show how to close it at once.)
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.sync.server import Server, ServerConnection, serve

ENVELOPE_KINDS = ("events_api", "slash_commands", "interactive")


@dataclass(frozen=True)
class RecordedCall:
    method: str  # "chat.postMessage", or "response_url" / "upload" / "socket.connect" for those endpoints
    args: dict[str, Any]  # for "socket.connect": the URL's query (ticket, app_id)
    headers: dict[str, str]
    status: int  # HTTP status; for "socket.connect" 101 (hello sent) or 1008 (ticket refused, closed)
    at: float


@dataclass
class _Failure:
    error: str
    times: int
    status: int = 200
    retry_after: int = 0


@dataclass
class _Delay:
    seconds: float
    times: int


@dataclass
class StandInState:
    calls: list[RecordedCall] = field(default_factory=list)
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    views: dict[str, dict[str, Any]] = field(default_factory=dict)
    uploads: dict[str, bytes] = field(default_factory=dict)
    failures: dict[str, list[_Failure]] = field(default_factory=lambda: defaultdict(list))
    delays: dict[str, list[_Delay]] = field(default_factory=lambda: defaultdict(list))
    held: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # calls being delayed now
    releases: int = 0  # bumped by release_delays(): every call held before it is answered at once
    tickets: set[str] = field(default_factory=set)  # issued by apps.connections.open, not used yet
    sockets: list[ServerConnection] = field(default_factory=list)  # greeted and open, oldest first
    envelopes: dict[str, dict[str, Any]] = field(default_factory=dict)  # pushed, by envelope_id
    acks: dict[str, dict[str, Any]] = field(default_factory=dict)
    ack_errors: list[str] = field(default_factory=list)
    usergroups: dict[str, list[str]] = field(default_factory=dict)  # S… -> member user IDs


def _parse_body(content_type: str, body: bytes, query: str) -> dict[str, Any]:
    """Arguments as Slack reads them: query string, form, multipart or JSON."""
    args: dict[str, Any] = dict(parse_qsl(query))
    if not body:
        return args
    kind = content_type.split(";", maxsplit=1)[0].strip().lower()
    if kind == "application/json":
        decoded = json.loads(body or b"{}")
        if isinstance(decoded, dict):
            args.update(decoded)
    elif kind == "multipart/form-data":
        message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            decoded_part = part.get_payload(decode=True)
            payload = decoded_part if isinstance(decoded_part, bytes) else b""
            if part.get_filename():
                args[str(name)] = payload
            else:
                args[str(name)] = payload.decode("utf-8", "replace")
    else:
        args.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    for key in ("blocks", "attachments", "view", "files"):  # JSON sent inside a form field
        value = args.get(key)
        if isinstance(value, str) and value[:1] in "[{":
            with contextlib.suppress(json.JSONDecodeError):
                args[key] = json.loads(value)
    return args


class SlackStandIn:
    """A Slack Web API on 127.0.0.1 (a random free port unless one is given) and its Socket Mode side."""

    app_id = "A0STANDIN"

    def __init__(
        self,
        *,
        port: int = 0,
        token: str = "xoxb-standin-token",
        app_token: str = "xapp-1-A0STANDIN-1-standin",
        team_id: str = "T0STANDIN",
        team: str = "Stand-in Workspace",
        bot_user_id: str = "U0BOT",
        channels: dict[str, str] | None = None,
    ) -> None:
        self.token = token
        self.app_token = app_token
        self.team_id = team_id
        self.team = team
        self.bot_user_id = bot_user_id
        self.channels = dict(channels or {"C0DEALS": "deals", "C0CHURN": "churn", "C0DIGEST": "icp-digest"})
        # Bot tokens -> their workspace; OAuth installs add more (oauth.v2.access).
        self.tokens: dict[str, dict[str, str]] = {
            token: {"team_id": team_id, "team": team, "user_id": bot_user_id, "bot_id": "B0BOT"}
        }
        self._install_codes: dict[str, dict[str, str]] = {}
        self.state = StandInState()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # notified on socket connects, closes and acks
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None
        self._socket_server: Server | None = None
        self._socket_thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """What `WebClient(base_url=...)` takes (with the trailing slash it needs)."""
        return f"http://127.0.0.1:{self.port}/api/"

    @property
    def socket_port(self) -> int:
        """The port of the Socket Mode WebSocket server (once started)."""
        if self._socket_server is None:
            raise RuntimeError("the Socket Mode server runs between start() and stop()")
        return int(self._socket_server.socket.getsockname()[1])

    def start(self) -> SlackStandIn:
        self._socket_server = serve(
            self._serve_socket, "127.0.0.1", 0, compression=None, close_timeout=2, open_timeout=5
        )
        self._socket_thread = threading.Thread(
            target=self._socket_server.serve_forever, name="slack-standin-socket", daemon=True
        )
        self._socket_thread.start()
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="slack-standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the WebSocket server and its connections (code 1001), then the Web API; join the threads."""
        self.release_delays()
        if self._socket_server is not None:
            self._socket_server.shutdown()  # closes the open sockets and waits for their handlers
            if self._socket_thread is not None:
                self._socket_thread.join(timeout=5)
            self._socket_server = self._socket_thread = None
            with self._changed:
                self.state.sockets.clear()
                self._changed.notify_all()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SlackStandIn:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- what tests look at and arrange ----------------------------------------------------------

    @property
    def calls(self) -> list[RecordedCall]:
        with self._lock:
            return list(self.state.calls)

    def calls_to(self, method: str) -> list[RecordedCall]:
        return [c for c in self.calls if c.method == method]

    def messages_in(self, channel: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.state.messages.get(channel, []))

    def fail_next(self, method: str, error: str = "not_in_channel", times: int = 1) -> None:
        """The next `times` calls of `method` answer `{"ok": false, "error": error}`."""
        with self._lock:
            self.state.failures[method].append(_Failure(error, times))

    def rate_limit_next(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """The next `times` calls of `method` answer HTTP 429 with `Retry-After`."""
        with self._lock:
            self.state.failures[method].append(_Failure("ratelimited", times, 429, retry_after))

    def delay_next(self, method: str, seconds: float, times: int = 1) -> None:
        """The next `times` calls of `method` (or "response_url") are answered `seconds` late.

        A slow Web API; with `seconds` above the client's timeout, one that times out (the call is
        still recorded, when it is finally answered). `held(method)` says how many calls are being
        delayed right now; `release_delays()` (and `stop()`) answers them at once.
        """
        with self._lock:
            self.state.delays[method].append(_Delay(seconds, times))

    def held(self, method: str) -> int:
        """How many calls of `method` are being delayed right now (arrived, not answered yet)."""
        with self._lock:
            return self.state.held.get(method, 0)

    def release_delays(self) -> None:
        """Answer every call being delayed now; delays arranged for later calls still apply."""
        with self._changed:
            self.state.releases += 1
            self._changed.notify_all()

    def response_url(self) -> str:
        """A fresh `response_url`, as Slack puts in command and action payloads."""
        return f"http://127.0.0.1:{self.port}/response/{next(self._ids)}"

    def set_usergroup(self, group: str, users: list[str]) -> None:
        """Make `group` (an S… ID) a user group with these members, for usergroups.users.list."""
        with self._lock:
            self.state.usergroups[group] = list(users)

    def post_history(
        self, channel: str, text: str, user: str = "U0REP", *, ts: str | None = None, **extra: Any
    ) -> str:
        """Put a message into a channel's history (as if a person had posted it); returns its ts.

        `ts` places it at a chosen time (say, while the bot was down, or last month); by default
        it gets the stand-in's next ts. Nothing is sent to the bot: it finds the message only by
        reading history (conversations.history, conversations.replies).
        """
        ts = ts or self._next_ts()
        with self._lock:
            self.state.messages[channel].append(
                {"type": "message", "user": user, "text": text, "ts": ts, **extra}
            )
        return ts

    def post_reply(
        self, channel: str, thread_ts: str, text: str, user: str = "U0REP", *, ts: str | None = None,
        **extra: Any,
    ) -> str:  # fmt: skip
        """Put a reply into the thread of `thread_ts` (conversations.replies shows it; history shows
        the parent's reply_count and latest_reply, and the reply itself only as a thread_broadcast)."""
        return self.post_history(channel, text, user, ts=ts, thread_ts=thread_ts, **extra)

    def edit_history(self, channel: str, ts: str, text: str) -> None:
        """Edit a message in history as its author would: new text, and Slack's `edited` mark."""
        with self._lock:
            for message in self.state.messages.get(channel, []):
                if message["ts"] == ts:
                    message["text"] = text
                    message["edited"] = {"user": message.get("user"), "ts": self._next_ts()}
                    return
        raise KeyError(f"no message {ts} in {channel}")

    # -- Socket Mode: what tests look at and arrange -------------------------------------------------

    def wait_connected(self, timeout: float = 10.0) -> bool:
        """True once a socket is open and has been sent `hello`; False if none is within `timeout` seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: bool(self.state.sockets), timeout)

    def push_envelope(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        retry_attempt: int = 0,
        retry_reason: str = "",
        envelope_id: str | None = None,
    ) -> str:
        """Send an envelope to the most recently opened socket, as Slack does; returns its envelope_id.

        `kind` is "events_api" (payload: the whole `event_callback` body), "slash_commands" (the
        command's form fields as a dict of strings) or "interactive" (the `block_actions` /
        `view_submission` object). Raises RuntimeError when no socket is open.
        """
        if kind not in ENVELOPE_KINDS:
            raise ValueError(f"unknown envelope type {kind!r}: Slack sends {', '.join(ENVELOPE_KINDS)}")
        envelope_id = envelope_id or str(uuid.uuid4())
        envelope = {"envelope_id": envelope_id, "payload": payload, "type": kind,
                    "accepts_response_payload": kind != "events_api",
                    "retry_attempt": retry_attempt, "retry_reason": retry_reason}  # fmt: skip
        with self._changed:
            if envelope_id in self.state.envelopes:
                raise ValueError(f"envelope {envelope_id} was pushed already (Slack's retries get new ids)")
            if not self.state.sockets:
                raise RuntimeError(
                    "no Socket Mode connection is open: connect a SocketModeClient and wait_connected() first"
                )
            connection = self.state.sockets[-1]
            self.state.envelopes[envelope_id] = envelope  # before sending: the ack may come back at once
        try:
            connection.send(json.dumps(envelope))
        except ConnectionClosed as closed:
            with self._changed:
                del self.state.envelopes[envelope_id]
            raise RuntimeError(f"the socket closed before envelope {envelope_id} was sent") from closed
        return envelope_id

    def wait_for_ack(self, envelope_id: str, timeout: float = 10.0) -> dict[str, Any] | None:
        """The ack the client sent for `envelope_id` (`{"envelope_id": ..., "payload": ...}`), or None."""
        with self._changed:
            self._changed.wait_for(lambda: envelope_id in self.state.acks, timeout)
            return self.state.acks.get(envelope_id)

    @property
    def acks(self) -> dict[str, dict[str, Any]]:
        """The acks received so far, by envelope_id (the first one for each envelope)."""
        with self._lock:
            return dict(self.state.acks)

    def unacked(self) -> list[str]:
        """The envelope ids pushed and not acknowledged (yet), in the order they were pushed."""
        with self._lock:
            return [eid for eid in self.state.envelopes if eid not in self.state.acks]

    @property
    def ack_errors(self) -> list[str]:
        """What the client sent that Slack would not take as an ack: not JSON, no or unknown
        envelope_id, or a second ack for one envelope."""
        with self._lock:
            return list(self.state.ack_errors)

    def disconnect_sockets(self, reason: str = "refresh_requested") -> None:
        """Send Slack's `disconnect` message to every open socket and close them (code 1000).

        A Socket Mode client then calls apps.connections.open again and reconnects.
        """
        message = json.dumps({"type": "disconnect", "reason": reason, "debug_info": {"host": "standin"}})
        self._close_sockets(message, CloseCode.NORMAL_CLOSURE, "")

    def close_sockets(self, code: int = CloseCode.GOING_AWAY, reason: str = "") -> None:
        """Close every open socket without a `disconnect` message first (a server going away).

        Returns once the clients have answered or dropped the connection. slack-sdk's builtin
        client does not reconnect at once then: its monitor notices within `ping_interval`.
        """
        self._close_sockets(None, code, reason)

    def _close_sockets(self, message: str | None, code: int, reason: str) -> None:
        with self._changed:
            connections = list(self.state.sockets)
            self.state.sockets.clear()  # no more envelopes for these
            self._changed.notify_all()
        for connection in connections:
            if message is not None:
                with contextlib.suppress(ConnectionClosed):
                    connection.send(message)
            connection.close(code, reason)

    # -- the API -----------------------------------------------------------------------------

    def _next_ts(self) -> str:
        return f"{1_700_000_000 + next(self._ts)}.000100"

    def _take_failure(self, method: str) -> _Failure | None:
        with self._lock:
            queue = self.state.failures.get(method)
            if not queue:
                return None
            failure = queue[0]
            failure.times -= 1
            if failure.times <= 0:
                queue.pop(0)
            return failure

    def _hold(self, method: str) -> None:
        """Wait out a delay arranged with delay_next (on this request's own thread)."""
        with self._changed:
            queue = self.state.delays.get(method)
            if not queue:
                return
            delay = queue[0]
            delay.times -= 1
            if delay.times <= 0:
                queue.pop(0)
            release = self.state.releases
            self.state.held[method] += 1
            self._changed.notify_all()
            try:
                self._changed.wait_for(lambda: self.state.releases != release, timeout=delay.seconds)
            finally:
                self.state.held[method] -= 1

    # -- OAuth: several workspaces ---------------------------------------------------------------

    def add_install(self, team_id: str, team: str, bot_user_id: str = "U0BOT") -> str:
        """A workspace whose admin approved the app: the code Slack sends to the redirect URL."""
        code = f"code-{team_id}-{next(self._ids)}"
        with self._lock:
            self._install_codes[code] = {"team_id": team_id, "team": team, "user_id": bot_user_id}
        return code

    def revoke(self, team_id: str) -> None:
        """The workspace uninstalled the app: its tokens stop working (invalid_auth)."""
        with self._lock:
            for token in [t for t, who in self.tokens.items() if who["team_id"] == team_id]:
                del self.tokens[token]

    def team_of(self, call: RecordedCall) -> str | None:
        """The workspace whose token made a recorded Web API call."""
        return call.headers.get("X-Standin-Team")

    def _api_oauth_v2_access(self, args: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            install = self._install_codes.pop(str(args.get("code") or ""), None)
            if install is None:
                return {"ok": False, "error": "invalid_code"}
            token = f"xoxb-{install['team_id'].lower()}-{next(self._ids)}-standin"
            self.tokens[token] = {**install, "bot_id": f"B{install['team_id'][1:]}"}
        return {
            "ok": True,
            "app_id": self.app_id,
            "authed_user": {"id": "U0INSTALLER"},
            "scope": str(args.get("scope") or ""),
            "token_type": "bot",
            "access_token": token,
            "bot_user_id": install["user_id"],
            "team": {"id": install["team_id"], "name": install["team"]},
            "enterprise": None,
            "is_enterprise_install": False,
        }

    def _record(self, method: str, args: dict[str, Any], headers: dict[str, str], status: int) -> None:
        with self._lock:
            self.state.calls.append(RecordedCall(method, args, headers, status, time.time()))

    def handle_api(
        self, method: str, args: dict[str, Any], token: str | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        self._hold(method)
        failure = self._take_failure(method)
        if failure is not None:
            if failure.status == 429:
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(failure.retry_after)}
            return 200, {"ok": False, "error": failure.error}, {}
        if method == "oauth.v2.access":  # client credentials, not a token
            return 200, self._api_oauth_v2_access(args), {}
        if not token:
            return 200, {"ok": False, "error": "not_authed"}, {}
        wants_app_token = method == "apps.connections.open"  # the one method for the app-level token
        if wants_app_token != token.startswith("xapp-"):
            return 200, {"ok": False, "error": "not_allowed_token_type"}, {}
        known = token == self.app_token if wants_app_token else token in self.tokens
        if not known:
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        handler = getattr(self, "_api_" + method.replace(".", "_"), None)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method"}, {}
        result: dict[str, Any] = handler({**args, "_token": token} if method == "auth.test" else args)
        return 200, result, {}

    def _channel(self, args: dict[str, Any]) -> str | None:
        channel = str(args.get("channel", ""))
        # A DM: its D… id, or a user id, which Slack accepts for chat.postMessage (the app's DM).
        direct = channel[:1] in {"D", "U", "W"} and len(channel) > 2
        return channel if channel in self.channels or direct else None

    def _api_auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        who = self.tokens.get(str(args.get("_token") or "")) or self.tokens[self.token]
        host = "standin" if who["team_id"] == self.team_id else f"{who['team_id'].lower()}.standin"
        return {"ok": True, "url": f"https://{host}.slack.test/", "user": "icp-bot",
                "team": who["team"], "team_id": who["team_id"], "user_id": who["user_id"],
                "bot_id": who["bot_id"]}  # fmt: skip

    def _post(self, args: dict[str, Any], **extra: Any) -> dict[str, Any]:
        channel = self._channel(args)
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if not args.get("text") and not args.get("blocks"):
            return {"ok": False, "error": "no_text"}
        if len(str(args.get("text", ""))) > 40_000:
            return {"ok": False, "error": "msg_too_long"}
        blocks = args.get("blocks") or []
        if isinstance(blocks, list) and len(blocks) > 50:
            return {"ok": False, "error": "invalid_blocks"}
        ts = self._next_ts()
        message = {"type": "message", "user": self.bot_user_id, "bot_id": "B0BOT", "ts": ts,
                   "text": args.get("text", ""), "blocks": blocks, **extra}  # fmt: skip
        if args.get("thread_ts"):
            message["thread_ts"] = args["thread_ts"]
        with self._lock:
            self.state.messages[channel].append(message)
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _api_apps_connections_open(self, _: dict[str, Any]) -> dict[str, Any]:
        ticket = str(uuid.uuid4())
        with self._lock:
            self.state.tickets.add(ticket)
        url = f"ws://127.0.0.1:{self.socket_port}/link/?ticket={ticket}&app_id={self.app_id}"
        return {"ok": True, "url": url}

    def _api_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        return self._post(args)

    def _api_chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        result = self._post(args, ephemeral_to=args.get("user"))
        return {"ok": True, "message_ts": result["ts"]} if result["ok"] else result

    def _api_chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args)
        with self._lock:
            for message in self.state.messages.get(channel or "", []):
                if message["ts"] == args.get("ts"):
                    message.update(text=args.get("text", message["text"]), blocks=args.get("blocks", []))
                    return {"ok": True, "channel": channel, "ts": message["ts"]}
        return {"ok": False, "error": "message_not_found"}

    def _api_chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args)
        with self._lock:
            history = self.state.messages.get(channel or "", [])
            for i, message in enumerate(history):
                if message["ts"] == args.get("ts"):
                    history.pop(i)
                    return {"ok": True, "channel": channel, "ts": args["ts"]}
        return {"ok": False, "error": "message_not_found"}

    def _api_chat_getPermalink(self, args: dict[str, Any]) -> dict[str, Any]:
        ts = str(args.get("message_ts", "")).replace(".", "")
        return {"ok": True, "channel": args.get("channel"),
                "permalink": f"https://standin.slack.test/archives/{args.get('channel')}/p{ts}"}  # fmt: skip

    def _api_conversations_list(self, _: dict[str, Any]) -> dict[str, Any]:
        channels = [{"id": cid, "name": name, "is_member": True} for cid, name in self.channels.items()]
        return {"ok": True, "channels": channels, "response_metadata": {"next_cursor": ""}}

    def _api_conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args)
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        return {"ok": True, "channel": {"id": channel, "name": self.channels.get(channel, channel)}}

    def _api_conversations_join(self, args: dict[str, Any]) -> dict[str, Any]:
        return self._api_conversations_info(args)

    # Slack's largest `limit` for history and replies. Since 2025 Slack caps it at 15 (and allows
    # one call a minute) for apps distributed outside the Marketplace: set 15 to imitate that.
    history_page_cap = 999

    @staticmethod
    def _ts_number(ts: object) -> Decimal:
        try:
            value = Decimal(str(ts))
        except ArithmeticError:
            return Decimal(-1)
        return Decimal(-1) if value.is_nan() else value

    def _window(self, messages: list[dict[str, Any]], args: dict[str, Any]) -> list[dict[str, Any]] | None:
        """The messages between `oldest` and `latest` (exclusive unless `inclusive`), or None when
        an argument is malformed."""
        oldest = self._ts_number(args.get("oldest") or 0)
        latest = self._ts_number(args["latest"]) if args.get("latest") else Decimal("Infinity")
        if oldest < 0 or latest < 0:
            return None
        inclusive = str(args.get("inclusive", "")).lower() in {"1", "true"}

        def inside(ts: Decimal) -> bool:
            if inclusive:
                return oldest <= ts <= latest
            return oldest < ts < latest

        return [m for m in messages if inside(self._ts_number(m["ts"]))]

    def _page_args(self, args: dict[str, Any]) -> tuple[int, Decimal | None] | None:
        """`limit` (capped as Slack does) and the ts a `cursor` continues from; None if malformed."""
        try:
            limit = int(args.get("limit") or 100)
        except ValueError:
            return None
        limit = max(1, min(limit, self.history_page_cap))
        cursor = str(args.get("cursor") or "")
        if not cursor:
            return limit, None
        try:
            kind, _, ts = base64.b64decode(cursor.encode(), validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return (limit, self._ts_number(ts)) if kind == "next_ts" else None

    @staticmethod
    def _cursor(ts: str) -> str:
        return base64.b64encode(f"next_ts:{ts}".encode()).decode()

    def _thread_view(self, channel: str) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
        """A channel as Slack's history shows it (no replies except broadcasts, no ephemeral
        messages; parents carry reply_count, reply_users and latest_reply), and the replies by thread."""
        with self._lock:
            stored = [dict(m) for m in self.state.messages.get(channel, []) if not m.get("ephemeral_to")]
        replies: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for message in stored:
            thread_ts = message.get("thread_ts")
            if thread_ts and thread_ts != message["ts"]:
                replies[str(thread_ts)].append(message)
        top = []
        for message in stored:
            thread_ts = message.get("thread_ts")
            if thread_ts and thread_ts != message["ts"] and message.get("subtype") != "thread_broadcast":
                continue
            thread = replies.get(str(message["ts"]))
            if thread:
                newest = max(thread, key=lambda m: self._ts_number(m["ts"]))
                users = sorted({str(m.get("user") or "") for m in thread} - {""})
                message.update(thread_ts=message["ts"], reply_count=len(thread), reply_users=users,
                               reply_users_count=len(users), latest_reply=newest["ts"])  # fmt: skip
            top.append(message)
        return top, replies

    def _api_conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        """Newest first within oldest/latest, `limit` at a time; `next_cursor` continues older."""
        channel = self._channel(args)
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        paging = self._page_args(args)
        top, _ = self._thread_view(channel)
        history = self._window(top, args)
        if paging is None or history is None:
            return {"ok": False, "error": "invalid_arguments"}
        limit, before = paging
        history.sort(key=lambda m: self._ts_number(m["ts"]), reverse=True)
        if before is not None:
            history = [m for m in history if self._ts_number(m["ts"]) < before]
        page, more = history[:limit], len(history) > limit
        next_cursor = self._cursor(page[-1]["ts"]) if more else ""
        return {"ok": True, "messages": page, "has_more": more,
                "response_metadata": {"next_cursor": next_cursor}}  # fmt: skip

    def _api_conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        """The parent first, then its replies oldest first within oldest/latest, `limit` at a time."""
        channel = self._channel(args)
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        top, replies = self._thread_view(channel)
        ts = str(args.get("ts", ""))
        parent = next((m for m in top if m["ts"] == ts), None)
        # A message tests only delivered as an event is not stored here; its thread still is.
        if parent is None and ts not in replies:
            return {"ok": False, "error": "thread_not_found"}
        paging = self._page_args(args)
        thread = self._window(replies.get(ts, []), args)
        if paging is None or thread is None:
            return {"ok": False, "error": "invalid_arguments"}
        limit, after = paging
        thread.sort(key=lambda m: self._ts_number(m["ts"]))
        if after is not None:
            thread = [m for m in thread if self._ts_number(m["ts"]) > after]
        page, more = thread[:limit], len(thread) > limit
        next_cursor = self._cursor(page[-1]["ts"]) if more else ""
        messages = [parent, *page] if parent is not None else page
        return {"ok": True, "messages": messages, "has_more": more,
                "response_metadata": {"next_cursor": next_cursor}}  # fmt: skip

    def _api_usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            users = self.state.usergroups.get(str(args.get("usergroup", "")))
        if users is None:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(users)}

    def _api_users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = str(args.get("user", ""))
        profile = {"id": user, "name": user.lower(), "real_name": f"User {user}", "tz": "America/New_York"}
        return {"ok": True, "user": {**profile, "is_bot": user == self.bot_user_id}}

    def _view(self, args: dict[str, Any], view_id: str | None = None) -> dict[str, Any]:
        view = args.get("view")
        if not isinstance(view, dict):
            return {"ok": False, "error": "invalid_arguments"}
        view_id = view_id or f"V{next(self._ids):08d}"
        stored = {**view, "id": view_id}
        with self._lock:
            self.state.views[view_id] = stored
        return {"ok": True, "view": stored}

    def _api_views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        return self._view(args)

    def _api_views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        view_id = str(args.get("view_id", ""))
        if view_id not in self.state.views:
            return {"ok": False, "error": "not_found"}
        return self._view(args, view_id)

    def _api_views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        return self._view(args)

    def _api_reactions_add(self, _: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True}

    def _api_files_getUploadURLExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        file_id = f"F{next(self._ids):08d}"
        with self._lock:
            self.state.uploads[file_id] = b""
        return {"ok": True, "file_id": file_id,
                "upload_url": f"http://127.0.0.1:{self.port}/upload/{file_id}"}  # fmt: skip

    def _api_files_completeUploadExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        files = args.get("files") or []
        if not isinstance(files, list) or not files:
            return {"ok": False, "error": "invalid_arguments"}
        with self._lock:
            missing = [f.get("id") for f in files if f.get("id") not in self.state.uploads]
        if missing:
            return {"ok": False, "error": "file_not_found"}
        channel = args.get("channel_id")
        if channel and channel not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        shared = [
            {"id": f["id"], "title": f.get("title", ""), "size": len(self.state.uploads[f["id"]])}
            for f in files
        ]
        if channel:
            with self._lock:
                self.state.messages[channel].append(
                    {
                        "type": "message",
                        "subtype": "file_share",
                        "ts": self._next_ts(),
                        "text": args.get("initial_comment", ""),
                        "files": shared,
                    }
                )
        return {"ok": True, "files": shared}

    # -- WebSocket ----------------------------------------------------------------------------

    def _serve_socket(self, connection: ServerConnection) -> None:
        """One Socket Mode connection (on its own thread): hello, then read acks until it closes."""
        request = connection.request
        url = urlsplit(request.path if request is not None else "")
        query = dict(parse_qsl(url.query))
        headers = dict(request.headers.raw_items()) if request is not None else {}
        ticket = query.get("ticket", "")
        with self._lock:
            valid = url.path in ("/link", "/link/") and ticket in self.state.tickets
            self.state.tickets.discard(ticket)  # single use
        self._record("socket.connect", query, headers, 101 if valid else CloseCode.POLICY_VIOLATION)
        if not valid:
            connection.close(CloseCode.POLICY_VIOLATION, "invalid_ticket")
            return
        try:
            with self._changed:
                count = len(self.state.sockets) + 1
            hello = {
                "type": "hello",
                "num_connections": count,
                "debug_info": {"host": "standin", "approximate_connection_time": 18060},
                "connection_info": {"app_id": self.app_id},
            }
            connection.send(json.dumps(hello))
            with self._changed:
                self.state.sockets.append(connection)
                self._changed.notify_all()
            for message in connection:
                self._take_ack(message)
        except ConnectionClosed:
            pass  # clients may drop the TCP connection without a closing handshake
        finally:
            with self._changed:
                if connection in self.state.sockets:
                    self.state.sockets.remove(connection)
                self._changed.notify_all()

    def _take_ack(self, message: str | bytes) -> None:
        text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
        try:
            ack = json.loads(text)
        except json.JSONDecodeError:
            ack = None
        with self._changed:
            envelope_id = ack.get("envelope_id") if isinstance(ack, dict) else None
            if not isinstance(ack, dict):
                self.state.ack_errors.append(f"not a JSON object: {text[:200]!r}")
            elif not isinstance(envelope_id, str):
                self.state.ack_errors.append(f"no envelope_id: {text[:200]!r}")
            elif envelope_id not in self.state.envelopes:
                self.state.ack_errors.append(f"ack for unknown envelope_id {envelope_id}")
            elif envelope_id in self.state.acks:
                self.state.ack_errors.append(f"second ack for envelope_id {envelope_id}")
            else:
                self.state.acks[envelope_id] = ack
            self._changed.notify_all()

    # -- HTTP ------------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: Any) -> None:  # quiet: tests read the recorded calls
                return

            def _reply(self, status: int, payload: dict[str, Any] | str, headers: dict[str, str]) -> None:
                body = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
                self.send_response(status)
                content_type = "text/plain" if isinstance(payload, str) else "application/json; charset=utf-8"
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                url = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() != "authorization"}
                content_type = self.headers.get("Content-Type", "")
                if url.path.startswith("/upload/"):
                    file_id = url.path.rsplit("/", 1)[-1]
                    data = body
                    if content_type.startswith("multipart/form-data"):
                        parts = _parse_body(content_type, body, "")
                        data = next((v for v in parts.values() if isinstance(v, bytes)), b"")
                    with standin._lock:
                        known = file_id in standin.state.uploads
                        if known:
                            standin.state.uploads[file_id] = data
                    status = 200 if known else 404
                    standin._record("upload", {"file_id": file_id, "size": len(data)}, headers, status)
                    self._reply(status, "OK - uploaded" if known else "not found", {})
                    return
                try:
                    args = _parse_body(content_type, body, url.query)
                except (ValueError, json.JSONDecodeError):
                    self._reply(200, {"ok": False, "error": "invalid_form_data"}, {})
                    return
                if url.path.startswith("/response/"):
                    standin._hold("response_url")
                    standin._record("response_url", args, headers, 200)
                    self._reply(200, "ok", {})
                    return
                if not url.path.startswith("/api/"):
                    self._reply(404, {"ok": False, "error": "not_found"}, {})
                    return
                method = url.path[len("/api/") :]
                auth = self.headers.get("Authorization", "")
                token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else args.pop("token", None)
                status, payload, extra = standin.handle_api(method, args, token)
                who = standin.tokens.get(str(token or ""))
                if who is not None:  # which workspace's token made the call (the token itself is not kept)
                    headers["X-Standin-Team"] = who["team_id"]
                standin._record(method, args, headers, status)
                self._reply(status, payload, extra)

            do_GET = do_POST

        return Handler
