"""The local Slack stand-in, driven by slack-sdk's own WebClient as the bot will drive it."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

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
