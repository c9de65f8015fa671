"""Bolt listeners, one module per surface, each with `register(app, services)`.

Listeners stay thin: acknowledge, call one use case, render, send.
"""

from __future__ import annotations

from slack_bolt import App

from bot.listeners import actions, commands, errors, events, views
from bot.services import BotServices


def register_all(app: App, services: BotServices) -> None:
    commands.register(app, services)
    actions.register(app, services)
    views.register(app, services)
    events.register(app, services)  # last: it ends with the catch-all for unknown event types
    errors.register(app, services)
