"""The local Slack stand-in, driven by slack-sdk's own WebClient as the bot will drive it."""

from __future__ import annotations

import json
import queue
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.client import BaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from bot.standin import SlackStandIn


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn() as standin:
        yield standin


@pytest.fixture
def client(slack: SlackStandIn) -> WebClient:
    return WebClient(token=slack.token, base_url=slack.base_url)


def test_auth_test_and_a_posted_message_are_recorded(slack: SlackStandIn, client: WebClient) -> None:
    me = client.auth_test()
    assert (me["team_id"], me["user_id"]) == (slack.team_id, slack.bot_user_id)
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Logged*"}}]
    sent = client.chat_postMessage(channel="C0DEALS", text="Logged: Loss", blocks=blocks, thread_ts="1.0")
    (call,) = slack.calls_to("chat.postMessage")
    assert call.args["text"] == "Logged: Loss"
    assert call.args["blocks"] == blocks  # JSON inside the request is decoded
    assert "authorization" not in {k.lower() for k in call.headers}  # tokens are never recorded
    (message,) = slack.messages_in("C0DEALS")
    assert (message["ts"], message["thread_ts"]) == (sent["ts"], "1.0")


def test_bad_tokens_channels_and_limits_get_slacks_errors(slack: SlackStandIn, client: WebClient) -> None:
    with pytest.raises(SlackApiError) as bad_token:
        WebClient(token="xoxb-wrong", base_url=slack.base_url).auth_test()
    assert bad_token.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as unknown_channel:
        client.chat_postMessage(channel="C0NOPE", text="x")
    assert unknown_channel.value.response["error"] == "channel_not_found"
    with pytest.raises(SlackApiError) as too_long:
        client.chat_postMessage(channel="C0DEALS", text="x" * 40_001)
    assert too_long.value.response["error"] == "msg_too_long"
    with pytest.raises(SlackApiError) as too_many_blocks:
        client.chat_postMessage(channel="C0DEALS", text="x", blocks=[{"type": "divider"}] * 51)
    assert too_many_blocks.value.response["error"] == "invalid_blocks"


def test_errors_on_demand(slack: SlackStandIn, client: WebClient) -> None:
    slack.fail_next("chat.postMessage", "not_in_channel")
    with pytest.raises(SlackApiError) as caught:
        client.chat_postMessage(channel="C0DEALS", text="hello")
    assert caught.value.response["error"] == "not_in_channel"
    assert client.chat_postMessage(channel="C0DEALS", text="hello")["ok"]  # only the next call failed


def test_rate_limits_are_retried_by_the_sdk_handler(slack: SlackStandIn) -> None:
    client = WebClient(token=slack.token, base_url=slack.base_url)
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=3))
    slack.rate_limit_next("chat.postMessage", times=2, retry_after=0)
    assert client.chat_postMessage(channel="C0DIGEST", text="Weekly ICP digest")["ok"]
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [429, 429, 200]
    assert len(slack.messages_in("C0DIGEST")) == 1  # posted once


def test_the_three_step_file_upload(slack: SlackStandIn, client: WebClient) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    client.files_upload_v2(channel="C0DIGEST", content=png, filename="chart.png", title="ICP win rate")
    methods = [c.method for c in slack.calls]
    assert methods == ["files.getUploadURLExternal", "upload", "files.completeUploadExternal"]
    (file_id,) = slack.state.uploads
    assert slack.state.uploads[file_id] == png
    (shared,) = slack.messages_in("C0DIGEST")
    assert shared["files"][0]["id"] == file_id


def test_history_pages_newest_first_and_response_urls(slack: SlackStandIn, client: WebClient) -> None:
    stamps = [slack.post_history("C0DEALS", f"message {i}") for i in range(5)]
    first = client.conversations_history(channel="C0DEALS", limit=2)
    assert [m["ts"] for m in first["messages"]] == stamps[::-1][:2]
    second = client.conversations_history(
        channel="C0DEALS", limit=2, cursor=first["response_metadata"]["next_cursor"]
    )
    assert [m["ts"] for m in second["messages"]] == stamps[::-1][2:4]
    newer = client.conversations_history(channel="C0DEALS", oldest=stamps[2])
    assert [m["ts"] for m in newer["messages"]] == stamps[:2:-1]

    url = slack.response_url()
    request = urllib.request.Request(
        url,
        data=json.dumps({"text": "Acme Corp — tier A"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200
    assert slack.calls_to("response_url")[0].args == {"text": "Acme Corp — tier A"}


def test_views_and_unknown_methods(slack: SlackStandIn, client: WebClient) -> None:
    view = {"type": "modal", "title": {"type": "plain_text", "text": "Change"}, "blocks": []}
    opened = client.views_open(trigger_id="123.456", view=view)
    updated = client.views_update(
        view_id=opened["view"]["id"], view={**view, "blocks": [{"type": "divider"}]}
    )
    assert updated["view"]["blocks"] == [{"type": "divider"}]
    with pytest.raises(SlackApiError) as unknown:
        client.api_call("admin.doSomething")
    assert unknown.value.response["error"] == "unknown_method"


# -- Socket Mode, driven by slack-sdk's builtin SocketModeClient as the bot will drive it ----------------


def eventually(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll `check` until it holds or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


class Bot:
    """A Socket Mode listener: keeps what arrives and acks each request (with `payload` when set)."""

    def __init__(self) -> None:
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.requests: queue.Queue[SocketModeRequest] = queue.Queue()
        self.ack = True
        self.payload: dict[str, Any] | None = None

    def on_message(self, _: BaseSocketModeClient, message: dict[str, Any], __: str | None) -> None:
        self.messages.put(message)

    def on_request(self, client: BaseSocketModeClient, request: SocketModeRequest) -> None:
        self.requests.put(request)
        if self.ack:
            client.send_socket_mode_response(SocketModeResponse(request.envelope_id, self.payload))

    def next_request(self) -> SocketModeRequest:
        return self.requests.get(timeout=5)


def socket_mode_client(slack: SlackStandIn, bot: Bot, **options: Any) -> SocketModeClient:
    web = WebClient(token=slack.token, base_url=slack.base_url)
    client = SocketModeClient(app_token=slack.app_token, web_client=web, **options)
    client.message_listeners.append(bot.on_message)
    client.socket_mode_request_listeners.append(bot.on_request)
    return client


def close(client: SocketModeClient, slack: SlackStandIn) -> None:
    """Close the client without its waits: close() would wait out the 3 s timeout of its blocking
    socket read and the 1 s timeout of its message queue."""
    client.auto_reconnect_enabled = False  # the close below must not bring it back
    try:
        slack.close_sockets()  # the close frame ends the blocking read; the client then drops its socket
        eventually(lambda: not client.is_connected())  # (two threads dropping it at once can race)
    finally:
        client.closed = True
        client.message_queue.put(None)  # wakes the message processor, which then sees `closed`
        client.close()


@pytest.fixture
def bot() -> Bot:
    return Bot()


@pytest.fixture
def socket_client(slack: SlackStandIn, bot: Bot) -> Iterator[SocketModeClient]:
    client = socket_mode_client(slack, bot)
    try:
        client.connect()
        assert slack.wait_connected()
        yield client
    finally:
        close(client, slack)


def event_callback(slack: SlackStandIn, text: str) -> dict[str, Any]:
    event = {
        "type": "message",
        "channel": "C0DEALS",
        "user": "U0REP",
        "text": text,
        "ts": "1700000001.000100",
    }
    return {"type": "event_callback", "team_id": slack.team_id, "api_app_id": slack.app_id, "event": event,
            "event_id": "Ev0STANDIN1", "event_time": 1_700_000_001}  # fmt: skip


def test_socket_mode_client_connects_and_gets_hello(
    slack: SlackStandIn, bot: Bot, socket_client: SocketModeClient
) -> None:
    hello = bot.messages.get(timeout=5)
    assert hello["type"] == "hello"
    assert hello["num_connections"] == 1
    assert hello["connection_info"] == {"app_id": slack.app_id}
    assert socket_client.is_connected()
    assert [c.method for c in slack.calls] == ["apps.connections.open", "socket.connect"]
    (connect,) = slack.calls_to("socket.connect")
    assert connect.status == 101
    assert connect.args["app_id"] == slack.app_id
    url = urlsplit(socket_client.wss_uri or "")
    assert (url.scheme, url.port, url.path) == ("ws", slack.socket_port, "/link/")
    assert dict(parse_qsl(url.query)) == connect.args


def test_an_event_reaches_the_listener_and_its_ack_is_recorded(
    slack: SlackStandIn, bot: Bot, socket_client: SocketModeClient
) -> None:
    body = event_callback(slack, "Lost Acme to Rival")
    envelope_id = slack.push_envelope("events_api", body, retry_attempt=1, retry_reason="timeout")
    request = bot.next_request()
    assert (request.type, request.envelope_id, request.payload) == ("events_api", envelope_id, body)
    assert not request.accepts_response_payload
    assert (request.retry_attempt, request.retry_reason) == (1, "timeout")
    assert slack.wait_for_ack(envelope_id) == {"envelope_id": envelope_id}
    assert slack.acks == {envelope_id: {"envelope_id": envelope_id}}
    assert slack.unacked() == []
    assert slack.ack_errors == []


def test_a_slash_command_ack_carries_its_payload(
    slack: SlackStandIn, bot: Bot, socket_client: SocketModeClient
) -> None:
    bot.payload = {"response_type": "ephemeral", "text": "Acme Corp: tier A"}
    command = {"command": "/icp", "text": "acme.com", "channel_id": "C0DEALS", "user_id": "U0REP",
               "response_url": slack.response_url(), "trigger_id": "123.456"}  # fmt: skip
    envelope_id = slack.push_envelope("slash_commands", command, envelope_id="env-1")
    assert envelope_id == "env-1"
    request = bot.next_request()
    assert (request.type, request.payload, request.accepts_response_payload) == (
        "slash_commands",
        command,
        True,
    )
    assert slack.wait_for_ack(envelope_id) == {"envelope_id": "env-1", "payload": bot.payload}


def test_envelopes_left_unacked_and_bad_acks_are_reported(
    slack: SlackStandIn, bot: Bot, socket_client: SocketModeClient
) -> None:
    bot.ack = False
    action = {"type": "block_actions", "user": {"id": "U0REP"}, "actions": [{"action_id": "tier"}]}
    envelope_id = slack.push_envelope("interactive", action)
    assert bot.next_request().payload == action
    assert slack.wait_for_ack(envelope_id, timeout=0.1) is None
    assert slack.unacked() == [envelope_id]

    socket_client.send_message("ok")
    socket_client.send_socket_mode_response({"envelope_id": "never-sent"})
    socket_client.send_socket_mode_response(SocketModeResponse(envelope_id))
    socket_client.send_socket_mode_response(SocketModeResponse(envelope_id))
    assert eventually(lambda: len(slack.ack_errors) == 3)
    assert slack.ack_errors == [
        "not a JSON object: 'ok'",
        "ack for unknown envelope_id never-sent",
        f"second ack for envelope_id {envelope_id}",
    ]
    assert slack.unacked() == []


def test_socket_mode_token_checks(slack: SlackStandIn) -> None:
    web = WebClient(token=slack.token, base_url=slack.base_url)
    client = SocketModeClient(app_token="xapp-1-A0STANDIN-1-wrong", web_client=web)
    try:
        with pytest.raises(SlackApiError) as wrong_app_token:
            client.connect()
    finally:
        close(client, slack)
    assert wrong_app_token.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as bot_token:
        web.apps_connections_open(app_token=slack.token)
    assert bot_token.value.response["error"] == "not_allowed_token_type"
    with pytest.raises(SlackApiError) as app_token_elsewhere:
        WebClient(token=slack.app_token, base_url=slack.base_url).chat_postMessage(
            channel="C0DEALS", text="x"
        )
    assert app_token_elsewhere.value.response["error"] == "not_allowed_token_type"
    assert slack.messages_in("C0DEALS") == []
    assert slack.calls_to("socket.connect") == []


def test_tickets_are_single_use(slack: SlackStandIn) -> None:
    url = WebClient(base_url=slack.base_url).apps_connections_open(app_token=slack.app_token)["url"]
    with ws_connect(url) as first:
        assert json.loads(first.recv(timeout=5))["type"] == "hello"
        for reused in (url, url.replace("ticket=", "ticket=x")):
            with ws_connect(reused) as refused, pytest.raises(ConnectionClosed) as closed:
                refused.recv(timeout=5)
            assert closed.value.rcvd is not None
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, "invalid_ticket")
    assert [c.status for c in slack.calls_to("socket.connect")] == [101, 1008, 1008]


def test_push_needs_an_open_socket_and_a_known_kind(slack: SlackStandIn) -> None:
    with pytest.raises(RuntimeError, match="no Socket Mode connection"):
        slack.push_envelope("events_api", {})
    with pytest.raises(ValueError, match="unknown envelope type"):
        slack.push_envelope("event", {})
    assert not slack.wait_connected(timeout=0.01)
    assert slack.unacked() == []


def test_after_disconnect_the_client_reconnects_and_gets_envelopes(
    slack: SlackStandIn, bot: Bot, socket_client: SocketModeClient
) -> None:
    assert bot.messages.get(timeout=5)["type"] == "hello"
    slack.disconnect_sockets()
    assert eventually(lambda: len(slack.calls_to("socket.connect")) == 2)
    assert slack.wait_connected()
    hello = bot.messages.get(timeout=5)
    assert (hello["type"], hello["num_connections"]) == ("hello", 1)
    assert [c.method for c in slack.calls] == ["apps.connections.open", "socket.connect"] * 2
    assert len({c.args["ticket"] for c in slack.calls_to("socket.connect")}) == 2
    envelope_id = slack.push_envelope("events_api", event_callback(slack, "still here"))
    assert bot.next_request().envelope_id == envelope_id
    assert slack.wait_for_ack(envelope_id) is not None


def test_after_an_abrupt_close_the_clients_monitor_reconnects(slack: SlackStandIn, bot: Bot) -> None:
    client = socket_mode_client(slack, bot, ping_interval=0.1)  # the monitor runs every ping_interval
    try:
        client.connect()
        assert slack.wait_connected()
        slack.close_sockets()
        assert eventually(lambda: len(slack.calls_to("socket.connect")) == 2)
        assert slack.wait_connected()
        envelope_id = slack.push_envelope("events_api", event_callback(slack, "back"))
        assert slack.wait_for_ack(envelope_id) is not None
    finally:
        close(client, slack)


def test_stop_closes_sockets_and_leaves_no_threads() -> None:
    before = set(threading.enumerate())
    slack = SlackStandIn().start()
    url = WebClient(base_url=slack.base_url).apps_connections_open(app_token=slack.app_token)["url"]
    with ws_connect(url) as socket:
        assert json.loads(socket.recv(timeout=5))["type"] == "hello"
        assert slack.wait_connected()
        slack.stop()
        with pytest.raises(ConnectionClosed) as closed:
            socket.recv(timeout=5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1001
    assert not slack.wait_connected(timeout=0.01)
    assert eventually(lambda: set(threading.enumerate()) <= before, timeout=2)
