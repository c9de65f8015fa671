"""manifest.yml is valid for Slack: checked against Slack's official schema in ../shared/slack."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft7Validator

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
