"""Every Slack surface the app listens on, named once.

tests/test_manifest.py checks these against manifest.yml, both ways: a command, event or scope in
code and missing from the manifest (or the reverse) fails the build.
"""

from __future__ import annotations

FIT_COMMAND = "/icp-fit"

# Block actions and view callbacks (interactivity).
FIT_SHARE = "fit_share"
FIT_PICK = "fit_pick"  # suggestion buttons are fit_pick_0 ... fit_pick_4
NOTE_CHANGE = "note_change"
NOTE_NOT_OUTCOME = "note_not_outcome"
NOTE_CORRECT = "note_correct"

# Events the app subscribes to (manifest `bot_events`), and the Web API methods it calls with the
# bot scope each needs. `message` arrives as message.channels (public) and message.groups (private).
BOT_EVENTS = ("app_mention", "message.channels", "message.groups")
WEB_API_SCOPES = {
    "auth.test": None,
    "chat.postMessage": "chat:write",
    "chat.postEphemeral": "chat:write",
    "chat.update": "chat:write",
    "chat.delete": "chat:write",
    "conversations.list": "channels:read",  # groups:read too, for private channels by #name
    "conversations.history": "channels:history",
    "reactions.add": "reactions:write",
    "reactions.remove": "reactions:write",
    "views.open": None,
    "views.update": None,
}
# Scopes the code needs beyond the Web API calls: commands, and reading what the events deliver.
EXTRA_SCOPES = ("commands", "app_mentions:read", "channels:history", "groups:history", "groups:read")
