"""Who may do what: the ICP admins named in icp.yml (`admins:`), by user ID or user group.

Everyone may change or retract the notes of their own messages; admins may also change anyone's,
post the digest by hand and (when Slack gains a way to) change settings. A user group's members
are looked up with `usergroups.users.list` and cached for a few minutes. A lookup that fails
counts as "not an admin" (the safe answer) and is logged once per group until it works again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

log = logging.getLogger("icp_bot")

GROUP_CACHE_SECONDS = 300.0  # how long a user group's members are trusted before looking again
FAILED_LOOKUP_RETRY_SECONDS = 60.0  # a failed lookup is not repeated on every click


class AdminDirectory:
    """Answers `is_admin(user_id)` from the configured user IDs and user groups."""

    def __init__(
        self,
        config_admins: Iterable[str],
        client: WebClient | None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        admins = list(dict.fromkeys(config_admins))
        self.users = frozenset(a for a in admins if not a.startswith("S"))
        self.groups = tuple(a for a in admins if a.startswith("S"))
        self._client = client
        self._clock = clock
        self._lock = threading.Lock()
        self._members: dict[str, tuple[float, frozenset[str]]] = {}  # group -> (expires, members)
        self._failing: set[str] = set()  # groups whose last lookup failed (logged once)

    @classmethod
    def nobody(cls) -> AdminDirectory:
        """No admins at all: only authors may change their own notes."""
        return cls((), None)

    @property
    def configured(self) -> bool:
        return bool(self.users or self.groups)

    def is_admin(self, user_id: str | None) -> bool:
        if not user_id:
            return False
        if user_id in self.users:
            return True
        return any(user_id in self._group_members(group) for group in self.groups)

    def may_change(self, author: str | None, actor: str | None) -> bool:
        """The author of a note's message, or an admin (a note posted by an integration: admins only)."""
        if actor and author and actor == author:
            return True
        return self.is_admin(actor)

    def mentions(self) -> list[str]:
        """The admins as Slack renders them: <@U…> for people, <!subteam^S…> for user groups."""
        return [f"<@{u}>" for u in sorted(self.users)] + [f"<!subteam^{g}>" for g in self.groups]

    def _group_members(self, group: str) -> frozenset[str]:
        now = self._clock()
        with self._lock:  # one lookup per group at a time; clicks meanwhile wait for its answer
            cached = self._members.get(group)
            if cached is not None and cached[0] > now:
                return cached[1]
            members, ok = self._look_up(group)
            self._members[group] = (
                now + (GROUP_CACHE_SECONDS if ok else FAILED_LOOKUP_RETRY_SECONDS),
                members,
            )
            return members

    def _look_up(self, group: str) -> tuple[frozenset[str], bool]:
        if self._client is None:
            return frozenset(), False
        try:
            answer = self._client.usergroups_users_list(usergroup=group, include_disabled=False)
        except SlackApiError as error:
            code = str(error.response.get("error") or "unknown_error") if error.response is not None else "?"
            fix = {
                "missing_scope": "add the usergroups:read scope to the app (manifest.yml) and reinstall it",
                "no_such_subteam": f"check the user group ID {group} in icp.yml (admins:)",
            }.get(code, "see https://api.slack.com/methods/usergroups.users.list")
            self._failed(group, f"{code}: {fix}")
            return frozenset(), False
        except Exception as error:  # network trouble must never break a button
            self._failed(group, f"{type(error).__name__}: {error}")
            return frozenset(), False
        if group in self._failing:
            self._failing.discard(group)
            log.info("user group %s can be looked up again", group)
        users = answer.get("users") or []
        return frozenset(str(u) for u in users if isinstance(u, str)), True

    def _failed(self, group: str, reason: str) -> None:
        if group in self._failing:
            log.debug("user group %s still cannot be looked up: %s", group, reason)
            return
        self._failing.add(group)
        log.warning(
            "cannot look up the members of the admin user group %s (%s); its members are not "
            "treated as admins until it works",
            group,
            reason,
        )


def _is_person(user_id: str | None) -> bool:
    return bool(user_id) and str(user_id)[:1] in {"U", "W"}


def not_allowed_text(author: str | None, admins: AdminDirectory) -> str:
    """Why a click on someone else's note did nothing (mrkdwn, shown only to the person)."""
    who = f"<@{author}> or an ICP admin" if _is_person(author) else "an ICP admin"
    text = f"Only {who} can change this note."
    if not admins.configured:
        text += " (No ICP admins are set: an operator can name them under `admins:` in icp.yml.)"
    return text


def not_allowed_plain(author: str | None) -> str:
    """The same, as plain text for a modal's field error (Slack shows no mentions there)."""
    if _is_person(author):
        return "Only the person who posted this message or an ICP admin can change this note."
    return "Only an ICP admin can change this note."
