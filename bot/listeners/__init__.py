"""Bolt listeners, one module per surface, each with `register(app, services)`.

Listeners stay thin: acknowledge, call one use case, render, send.
"""

from __future__ import annotations

from slack_bolt import App

from bot.listeners import actions, commands, errors, events, views
from bot.services import BotServices
from bot.workspaces import Workspaces


def register_all(app: App, target: BotServices | Workspaces) -> None:
    """`target`: the workspaces this app serves, or one workspace's services."""
    workspaces = target if isinstance(target, Workspaces) else Workspaces.one(target)
    commands.register(app, workspaces)
    actions.register(app, workspaces)
    views.register(app, workspaces)
    events.register(app, workspaces)  # last: it ends with the catch-all for unknown event types
    errors.register(app, workspaces)
