"""manifest.yml is valid for Slack: checked against Slack's official schema in ../shared/slack."""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator
from slack_sdk import WebClient

from bot import surface

ROOT = Path(__file__).parent.parent
SCHEMA = ROOT.parent / "shared" / "slack" / "manifest.schema.1.0.0.json"


@pytest.fixture(scope="module")
def manifest() -> dict[str, object]:
    data = yaml.safe_load((ROOT / "manifest.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_manifest_validates_against_slacks_schema(manifest: dict[str, object]) -> None:
    if not SCHEMA.exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI must validate the manifest, but {SCHEMA} is missing")
        pytest.skip(f"Slack's manifest schema is not at {SCHEMA} (it is in ../shared beside the checkout)")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    errors = sorted(Draft7Validator(schema).iter_errors(manifest), key=lambda e: list(e.path))
    assert [f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors] == []


def test_manifest_declares_the_fit_command_with_the_scope_it_needs(manifest: dict[str, object]) -> None:
    features = manifest["features"]
    assert isinstance(features, dict)
    assert [c["command"] for c in features["slash_commands"]] == ["/icp-fit"]
    scopes = manifest["oauth_config"]["scopes"]["bot"]  # type: ignore[index]
    assert "commands" in scopes and "chat:write" in scopes


# ---------------------------------------------------------------------------------------------
# The manifest and the code agree, both ways.

BOT = ROOT / "bot"
# The modules that talk to Slack on the bot's behalf (the stand-in, payload builders and the demo
# only imitate Slack).
IMITATORS = {"standin.py", "payloads.py", "demo.py"}
SLACK_CALLERS = [p for p in sorted(BOT.rglob("*.py")) if p.name not in IMITATORS]


def _constant(node: ast.expr) -> object:
    """A literal, or a `surface.NAME` constant, as its value (None for anything else)."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "surface":
        return getattr(surface, node.attr)
    if isinstance(node, ast.Dict):
        return {
            _constant(k): _constant(v) for k, v in zip(node.keys, node.values, strict=True) if k is not None
        }
    return None


def _listeners() -> dict[str, set[object]]:
    """Every `@app.command/event/action/view(...)` registration in bot/listeners."""
    found: dict[str, set[object]] = {"command": set(), "event": set(), "action": set(), "view": set()}
    for path in sorted((BOT / "listeners").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "app"
                and node.func.attr in found
                and node.args
            ):
                value = _constant(node.args[0])
                if isinstance(value, dict):
                    value = value.get("type")
                if value is not None:  # a regex (fit_pick_N, the catch-all for unknown events)
                    found[node.func.attr].add(value)
    return found


def _web_api_methods() -> set[str]:
    """Web API methods called as `client.chat_postMessage(...)` in the modules that talk to Slack."""
    methods = set()
    for path in SLACK_CALLERS:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            owner = node.func.value
            owner_name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
            if owner_name in {"client", "_client"} and hasattr(WebClient, node.func.attr):
                family, _, name = node.func.attr.partition("_")
                methods.add(f"{family}.{name}")
    return methods


def test_every_command_in_code_is_in_the_manifest_and_the_reverse(manifest: dict[str, Any]) -> None:
    in_code = _listeners()["command"]
    in_manifest = {c["command"] for c in manifest["features"]["slash_commands"]}
    assert in_code == in_manifest == {surface.FIT_COMMAND}


def test_every_event_listened_to_is_subscribed_and_the_reverse(manifest: dict[str, Any]) -> None:
    in_code = _listeners()["event"]
    assert in_code == set(surface.EVENT_SUBSCRIPTIONS), (
        "a listener's event needs an EVENT_SUBSCRIPTIONS entry"
    )
    expected = {name for event in in_code for name in surface.EVENT_SUBSCRIPTIONS[str(event)]}
    assert set(manifest["settings"]["event_subscriptions"]["bot_events"]) == expected


def test_buttons_and_modals_have_listeners_and_interactivity_is_on(manifest: dict[str, Any]) -> None:
    listeners = _listeners()
    assert listeners["action"] == {surface.FIT_SHARE, surface.NOTE_CHANGE, surface.NOTE_NOT_OUTCOME}
    assert listeners["view"] == {surface.NOTE_CORRECT}
    blocks = (BOT / "blocks.py").read_text(encoding="utf-8")
    for action in ("FIT_SHARE", "FIT_PICK", "NOTE_CHANGE", "NOTE_NOT_OUTCOME", "NOTE_CORRECT"):
        assert f"surface.{action}" in blocks, f"{action} has a listener but no block uses it"
    assert manifest["settings"]["interactivity"]["is_enabled"] is True


def test_the_bot_scopes_are_exactly_what_the_code_needs(manifest: dict[str, Any]) -> None:
    called = _web_api_methods()
    unmapped = called - set(surface.WEB_API_SCOPES)
    assert not unmapped, f"add these Web API methods and their scopes to bot/surface.py: {unmapped}"
    needed = {surface.COMMAND_SCOPE}
    needed |= {scope for method in called for scope in surface.WEB_API_SCOPES[method]}
    needed |= {scope for subs in surface.EVENT_SUBSCRIPTIONS.values() for scope in subs.values() if scope}
    assert sorted(manifest["oauth_config"]["scopes"]["bot"]) == sorted(needed)
    assert surface.bot_scopes() == sorted(needed)  # what an OAuth installation asks for
    assert {"chat.postMessage", "chat.update", "chat.delete", "views.open", "conversations.list"} <= called
