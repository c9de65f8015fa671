"""Every Slack surface the app uses, named once.

tests/test_manifest.py checks these and the code against manifest.yml, both ways: a command,
event, Web API call or scope in code and missing from the manifest (or the reverse) fails the build.
"""

from __future__ import annotations

FIT_COMMAND = "/icp-fit"

# Block actions and view callbacks (interactivity).
FIT_SHARE = "fit_share"
FIT_PICK = "fit_pick"  # suggestion buttons are fit_pick_0 ... fit_pick_4
NOTE_CHANGE = "note_change"
NOTE_NOT_OUTCOME = "note_not_outcome"
NOTE_CORRECT = "note_correct"

# Events the listeners handle -> the manifest's bot events and the scope each needs.
# `message` arrives as message.channels (public channels) and message.groups (private ones).
EVENT_SUBSCRIPTIONS = {
    "message": {"message.channels": "channels:history", "message.groups": "groups:history"},
    "app_mention": {"app_mention": "app_mentions:read"},
    # Told by Slack when a workspace removes the app or revokes its token (no scope needed).
    "app_uninstalled": {"app_uninstalled": ""},
    "tokens_revoked": {"tokens_revoked": ""},
}
COMMAND_SCOPE = "commands"


def bot_scopes() -> list[str]:
    """Every bot scope the code needs (what an OAuth installation asks for; the manifest's list)."""
    needed = {COMMAND_SCOPE}
    needed |= {scope for scopes in WEB_API_SCOPES.values() for scope in scopes}
    needed |= {scope for subs in EVENT_SUBSCRIPTIONS.values() for scope in subs.values() if scope}
    return sorted(needed)


# Web API methods the bot calls -> the bot scopes they need.
WEB_API_SCOPES: dict[str, tuple[str, ...]] = {
    "auth.test": (),
    "chat.postMessage": ("chat:write",),
    "chat.postEphemeral": ("chat:write",),
    "chat.update": ("chat:write",),
    "chat.delete": ("chat:write",),
    "conversations.list": ("channels:read", "groups:read"),  # capture channels given by #name
    "reactions.add": ("reactions:write",),  # capture.confirm: reaction
    "reactions.remove": ("reactions:write",),
    "views.open": (),
    # A digest that got through? And catch-up after downtime / backfill (bot.history).
    "conversations.history": ("channels:history", "groups:history"),
    "conversations.replies": ("channels:history", "groups:history"),  # thread replies missed while down
    "files.upload_v2": ("files:write",),  # the digest's chart (three calls, one scope)
    "apps.connections.open": (),  # Socket Mode, with the app-level token
    "usergroups.users_list": ("usergroups:read",),  # usergroups.users.list: admins given as a group
}
