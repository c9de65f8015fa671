"""/icp-fit: acknowledge at once, answer privately through the response_url."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond

from bot import surface
from bot.blocks import SlackMessage, fit_message, not_found_message, notice_message, usage_message
from bot.listeners.errors import reported
from bot.render import escape_mrkdwn
from bot.services import BotServices
from bot.workspaces import Workspaces
from insights.errors import AccountNotFoundError, UserError
from insights.service import fit_for


def fit_reply(services: BotServices, text: str) -> SlackMessage:
    """The answer to `/icp-fit text`: a fit, suggestions, or a one-line reason why not."""
    try:
        answer = fit_for(
            services.ctx.session_factory,
            services.team_id,
            text,
            services.ctx.config.icp,
            name_keys=services.tagger.name_keys,
        )
    except AccountNotFoundError as error:
        return not_found_message(error)
    except UserError as error:
        return notice_message(escape_mrkdwn(str(error)).replace("icp-bot fit", "/icp-fit"))
    return fit_message(answer)


def handle_icp_fit_command(
    ack: Ack, command: dict[str, Any], respond: Respond, services: BotServices
) -> None:
    text = str(command.get("text") or "").strip()
    # Slack sends &, < and > as &amp;, &lt; and &gt; ("Litware &amp; Sons"); answers escape them again.
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    if not text:
        ack(response_type="ephemeral", **usage_message().as_kwargs())
        return
    ack()
    respond(response_type="ephemeral", **fit_reply(services, text).as_kwargs())


def register(app: App, workspaces: Workspaces) -> None:
    @app.command(surface.FIT_COMMAND)
    @reported
    def icp_fit(ack: Ack, command: dict[str, Any], respond: Respond, context: BoltContext) -> None:
        services = workspaces.for_request(context, ack)
        if services is not None:
            handle_icp_fit_command(ack, command, respond, services)
