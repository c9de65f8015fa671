"""Who is an ICP admin: user IDs, user groups looked up in Slack (cached), failures that fail safe."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from slack_sdk import WebClient

from bot.access import AdminDirectory, not_allowed_plain, not_allowed_text
from bot.standin import SlackStandIn


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn() as standin:
        yield standin


def _client(slack: SlackStandIn) -> WebClient:
    return WebClient(token=slack.token, base_url=slack.base_url)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_listed_users_are_admins_without_asking_slack(slack: SlackStandIn) -> None:
    admins = AdminDirectory(["U0LEAD", "W0GRID"], _client(slack))
    assert admins.is_admin("U0LEAD") and admins.is_admin("W0GRID")
    assert not admins.is_admin("U0MAYA") and not admins.is_admin("") and not admins.is_admin(None)
    assert slack.calls_to("usergroups.users.list") == []
    assert admins.mentions() == ["<@U0LEAD>", "<@W0GRID>"]


def test_members_of_a_user_group_are_admins_and_looked_up_once_per_five_minutes(
    slack: SlackStandIn,
) -> None:
    slack.set_usergroup("S0ICPADMINS", ["U0DANA", "U0RAJ"])
    clock = Clock()
    admins = AdminDirectory(["U0LEAD", "S0ICPADMINS"], _client(slack), clock=clock)
    assert admins.is_admin("U0DANA") and admins.is_admin("U0RAJ") and not admins.is_admin("U0MAYA")
    (lookup,) = slack.calls_to("usergroups.users.list")
    assert lookup.args["usergroup"] == "S0ICPADMINS"
    slack.set_usergroup("S0ICPADMINS", ["U0RAJ"])  # Dana leaves the group
    clock.now += 299
    assert admins.is_admin("U0DANA")  # still cached
    clock.now += 2
    assert not admins.is_admin("U0DANA") and admins.is_admin("U0RAJ")
    assert len(slack.calls_to("usergroups.users.list")) == 2
    assert admins.mentions() == ["<@U0LEAD>", "<!subteam^S0ICPADMINS>"]


def test_a_failing_lookup_means_not_an_admin_and_is_logged_once(
    slack: SlackStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    admins = AdminDirectory(["S0GONE"], _client(slack), clock=clock)
    with caplog.at_level(logging.DEBUG, logger="icp_bot"):
        assert not admins.is_admin("U0DANA")
        assert not admins.is_admin("U0DANA")  # the failure is cached: no second call at once
        clock.now += 61
        assert not admins.is_admin("U0DANA")
    assert len(slack.calls_to("usergroups.users.list")) == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "S0GONE" in warnings[0].getMessage() and "no_such_subteam" in warnings[0].getMessage()

    slack.set_usergroup("S0GONE", ["U0DANA"])  # fixed: found again at the next look
    clock.now += 61
    assert admins.is_admin("U0DANA")


def test_a_missing_scope_is_explained(slack: SlackStandIn, caplog: pytest.LogCaptureFixture) -> None:
    slack.set_usergroup("S0ICPADMINS", ["U0DANA"])
    slack.fail_next("usergroups.users.list", "missing_scope")
    with caplog.at_level(logging.WARNING, logger="icp_bot"):
        assert not AdminDirectory(["S0ICPADMINS"], _client(slack)).is_admin("U0DANA")
    assert "usergroups:read" in caplog.text


def test_an_unreachable_slack_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    client = WebClient(token="xoxb-x", base_url="http://127.0.0.1:9/api/", timeout=1)
    with caplog.at_level(logging.WARNING, logger="icp_bot"):
        assert not AdminDirectory(["S0ICPADMINS"], client).is_admin("U0DANA")
    assert "cannot look up the members of the admin user group S0ICPADMINS" in caplog.text


def test_authors_may_change_their_own_notes_admins_anyones() -> None:
    admins = AdminDirectory(["U0LEAD"], None)
    assert admins.may_change("U0MAYA", "U0MAYA")
    assert admins.may_change("U0MAYA", "U0LEAD")
    assert not admins.may_change("U0MAYA", "U0RAJ")
    assert not admins.may_change(None, "U0RAJ") and admins.may_change(None, "U0LEAD")
    assert not admins.may_change("B0SALESFORCE", "U0RAJ")  # an integration's post: admins only
    assert not admins.may_change("U0MAYA", "")
    nobody = AdminDirectory.nobody()
    assert not nobody.configured and nobody.may_change("U0MAYA", "U0MAYA")
    assert not nobody.is_admin("U0LEAD")


def test_the_refusal_names_the_author_and_says_when_no_admin_is_set() -> None:
    admins = AdminDirectory(["U0LEAD"], None)
    assert not_allowed_text("U0MAYA", admins) == "Only <@U0MAYA> or an ICP admin can change this note."
    assert not_allowed_text("B0SALESFORCE", admins) == "Only an ICP admin can change this note."
    assert "`admins:` in icp.yml" in not_allowed_text("U0MAYA", AdminDirectory.nobody())
    assert "<@" not in not_allowed_plain("U0MAYA")  # modal errors are plain text
