"""The error path of listeners: logged with a traceback, acknowledged, told to the person."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from slack_bolt import Ack
from slack_bolt.context.respond import Respond
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from bot.listeners.errors import reported
from bot.standin import SlackStandIn


def _slack_error(code: str) -> SlackApiError:
    response = SlackResponse(
        client=None, http_verb="POST", api_url="x", req_args={}, data={"ok": False, "error": code},
        headers={}, status_code=200,
    )  # fmt: skip
    return SlackApiError(code, response)  # type: ignore[no-untyped-call]


@pytest.mark.parametrize("ack_first", [True, False])
def test_an_error_in_a_listener_is_acked_logged_and_told(
    ack_first: bool, caplog: pytest.LogCaptureFixture
) -> None:
    with SlackStandIn() as slack:
        url = slack.response_url()
        ack, respond = Ack(), Respond(response_url=url)  # type: ignore[no-untyped-call]

        @reported
        def listener(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
            if ack_first:
                ack()
            raise RuntimeError("boom")

        with caplog.at_level(logging.ERROR, logger="icp_bot"):
            listener(ack=ack, body={"type": "block_actions", "response_url": url}, respond=respond)
        assert ack.response is not None and ack.response.status == 200
        (told,) = slack.calls_to("response_url")
        assert told.args["response_type"] == "ephemeral" and "Something went wrong" in told.args["text"]
        assert any(r.exc_info and "boom" in str(r.exc_info[1]) for r in caplog.records)


def test_a_slack_refusal_is_explained_with_its_fix() -> None:
    with SlackStandIn() as slack:
        url = slack.response_url()

        @reported
        def listener(ack: Ack, command: dict[str, Any], respond: Respond) -> None:
            ack()
            raise _slack_error("not_in_channel")

        command = {"command": "/icp-fit", "channel_name": "deals", "response_url": url}
        ack = Ack()  # type: ignore[no-untyped-call]
        listener(ack=ack, command=command, respond=Respond(response_url=url))
        (told,) = slack.calls_to("response_url")
        assert "not_in_channel: invite the bot to #deals (/invite @icp-bot)" in told.args["text"]
