"""`icp-bot demo`: the whole product on this machine, with no Slack account and nothing configured.

The real app (`bot.app.build_bot`, every listener, the real Web API client) runs in this process
against the local Slack stand-in (`bot.standin`), on an embedded SQLite file in the demo folder:

1. the bundled sample CRM accounts are imported and scored against the bundled example ICP;
2. a few weeks of bundled channel traffic (`bot/resources/demo_traffic.jsonl`: posts, thread
   replies, a broadcast reply, integration bots, an edit and a delete) are replayed as signed
   Events API requests in Slack's exact shapes, in order;
3. a person corrects one wrongly tagged note with the *Change* button and modal;
4. `/icp-fit` is run on a few accounts;

and the terminal shows what the bot posted, read back from the calls the stand-in recorded.

Requests are dispatched in-process (`App.dispatch`) with `process_before_response=True`, so each
listener has finished, and its Web API calls are recorded, when dispatch returns: the run is
deterministic. Every run starts from a fresh database in the folder, so running it twice in the
same folder gives the same notes, never twice as many.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from slack_bolt.request import BoltRequest

from bot import surface
from bot.app import Bot, build_bot
from bot.chart import digest_chart_png
from bot.context import LOCAL_TEAM
from bot.digest_view import digest_html, digest_text
from bot.payloads import Workspace, sign
from bot.render import KIND_LABELS, kind_label, outcomes_import_text, overview_text, render, terminal_safe
from bot.settings import Settings, bundled_resource
from bot.standin import RecordedCall, SlackStandIn
from insights.capture import NoteView, iter_notes
from insights.config import Config, load_config
from insights.digest import Digest
from insights.errors import UserError
from insights.outcomes_service import import_outcomes
from insights.service import import_accounts, score_all
from storage.engine import make_engine, make_session_factory
from storage.schema import upgrade

TRAFFIC_FILE = "demo_traffic.jsonl"
# Salesforce deals closed in the ten weeks before the replayed traffic (generated for the demo):
# the history that gives the first digest its trend.
DEALS_FILE = "demo_opportunities.csv"
DIGEST_DAY = (2026, 11, 23)  # the Monday after the replayed weeks: its digest covers Nov 16-22
CHANNELS = {"C0DEALS": "deals", "C0CHURN": "churn", "C0CSWINS": "cs-wins", "C0DIGEST": "icp-digest"}
CHANNEL_IDS = {name: cid for cid, name in CHANNELS.items()}
SIGNING_SECRET = "demo0signing0secret0not0a0real01"  # the stand-in's, never Slack's
CONFIG_MARK = "# Written by `icp-bot demo`"
CAPTURE_BLOCK = """\
capture:
  # The demo also captures #cs-wins, where the CS team posts expansions, upgrades and references:
  # without it no customer win would ever be logged.
  channels: [C0DEALS, "#churn", "#cs-wins"]
  confirm: thread          # thread | reaction | ephemeral
  # Other apps' posts are ignored unless named here: the CRM's "Closed Won" posts count, the
  # standup bot's summaries do not.
  bots: [Salesforce]
"""
_CAPTURE_SECTION = re.compile(r"^capture:\n(?:[ \t]+\S.*\n|[ \t]*\n(?=[ \t]))*", re.MULTILINE)


# ---------------------------------------------------------------------------------------------
# The bundled traffic


@dataclass(frozen=True)
class Expected:
    """The hand labels written with the traffic (what a careful person would log)."""

    kind: str | None
    account: str | None
    competitor: str | None
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class TrafficLine:
    id: str
    at: datetime  # aware, in the digest's timezone
    channel: str  # a name: deals | churn | cs-wins
    user: str | None
    text: str
    thread_of: str | None = None
    broadcast: bool = False
    bot: str | None = None
    edit_of: str | None = None
    delete_of: str | None = None
    expect: Expected | None = None


def load_traffic(path: Path, timezone: str) -> list[TrafficLine]:
    zone = ZoneInfo(timezone)
    lines = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        item = json.loads(raw)
        expect = item.get("expect")
        lines.append(
            TrafficLine(
                id=str(item["id"]),
                at=datetime.fromisoformat(item["at"]).replace(tzinfo=zone),
                channel=str(item["channel"]),
                user=item.get("user"),
                text=str(item.get("text") or ""),
                thread_of=item.get("thread_of"),
                broadcast=bool(item.get("broadcast")),
                bot=item.get("bot"),
                edit_of=item.get("edit_of"),
                delete_of=item.get("delete_of"),
                expect=(
                    Expected(
                        expect["kind"], expect["account"], expect["competitor"], tuple(expect["reasons"])
                    )
                    if expect
                    else None
                ),
            )
        )
        if lines[-1].channel not in CHANNEL_IDS:
            raise ValueError(f"{path.name} line {number}: unknown channel {lines[-1].channel!r}")
    return lines


def message_ts(line: TrafficLine, number: int) -> str:
    """A Slack ts for a line: its local time as a Unix time, the line's number as microseconds."""
    return f"{int(line.at.timestamp())}.{number:06d}"


# ---------------------------------------------------------------------------------------------
# The demo folder


def write_demo_config(folder: Path) -> Path:
    """The bundled example ICP with the demo's capture settings, as `icp.yml` in the folder."""
    path = folder / "icp.yml"
    if path.exists() and not path.read_text(encoding="utf-8", errors="replace").startswith(CONFIG_MARK):
        raise UserError(
            f"{path} exists and was not written by the demo; run the demo in another folder (--dir)"
        )
    example = bundled_resource("icp.example.yml").read_text(encoding="utf-8")
    text, found = _CAPTURE_SECTION.subn(CAPTURE_BLOCK, example, count=1)
    if not found:
        raise RuntimeError("the bundled icp.example.yml has no capture: section for the demo to adapt")
    header = (
        f"{CONFIG_MARK} from the bundled example; the demo rewrites it on every run.\n"
        "# Copy it (or run 'icp-bot init') to start your own.\n\n"
    )
    path.write_text(header + text, encoding="utf-8")
    return path


@contextmanager
def bot_log(path: Path) -> Iterator[Counter[str]]:
    """Send the bot's log to a file while the demo runs (the terminal shows what Slack would)."""
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    levels: Counter[str] = Counter()

    def count(record: logging.LogRecord) -> bool:
        levels[record.levelname] += 1
        return True

    handler.addFilter(count)
    loggers = [logging.getLogger(name) for name in ("icp_bot", "slack_bolt", "slack_sdk")]
    saved = [(lg.level, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.propagate = False
        lg.setLevel(logging.INFO if lg.name == "icp_bot" else logging.WARNING)
    try:
        yield levels
    finally:
        for lg, (level, propagate) in zip(loggers, saved, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)
            lg.propagate = propagate
        handler.close()


# ---------------------------------------------------------------------------------------------
# Slack's markup, for a terminal

_LINK = re.compile(r"<([^<>|\n]*)(?:\|([^<>\n]*))?>")
_EMPHASIS = [
    re.compile(rf"(?<![\w{m}]){re.escape(m)}(?=\S)([^{m}\n]+?)(?<=\S){re.escape(m)}(?![\w{m}])")
    for m in "*_~"
]
_CODE = re.compile(r"`([^`\n]+)`")


def mrkdwn_to_terminal(text: str, users: Mapping[str, str]) -> str:
    """Slack mrkdwn as plain text: links become their labels, mentions @names, emphasis marks go,
    `&amp;` `&lt;` `&gt;` are unescaped and control characters removed. Emoji codes stay."""

    def link(match: re.Match[str]) -> str:
        target, label = match.group(1), match.group(2)
        if target.startswith("@"):
            return "@" + users.get(target[1:], label or target[1:])
        if target.startswith("#"):
            return "#" + (label or CHANNELS.get(target[1:], target[1:]))
        if target.startswith("!"):
            return "@" + (label or target[1:].split("^")[0]).lstrip("@")
        return label or target.removeprefix("mailto:")

    plain = _CODE.sub(r"\1", _LINK.sub(link, text))
    for emphasis in _EMPHASIS:
        plain = emphasis.sub(r"\1", plain)
    plain = plain.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return terminal_safe(plain)


def one_line(text: str, users: Mapping[str, str], limit: int = 90) -> str:
    """A message as one short line of plain text, for a quote."""
    flat = " ".join(mrkdwn_to_terminal(text, users).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def message_lines(args: Mapping[str, Any], users: Mapping[str, str]) -> list[str]:
    """What a person sees of a message the bot sent (its blocks, else its text), line by line."""
    blocks = args.get("blocks")
    lines: list[str] = []
    if isinstance(blocks, list) and blocks:
        for block in blocks:
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if kind in ("section", "header"):
                text = (block.get("text") or {}).get("text") or ""
                lines += [line for line in mrkdwn_to_terminal(str(text), users).splitlines() if line.strip()]
            elif kind == "context":
                parts = [str(e.get("text") or "") for e in block.get("elements") or [] if isinstance(e, dict)]
                lines.append(mrkdwn_to_terminal(" · ".join(p for p in parts if p), users))
            elif kind == "actions":
                labels = [
                    str((e.get("text") or {}).get("text") or "")
                    for e in block.get("elements") or []
                    if isinstance(e, dict)
                ]
                lines.append(" ".join(f"[{terminal_safe(label)}]" for label in labels if label))
    else:
        lines = [line for line in mrkdwn_to_terminal(str(args.get("text") or ""), users).splitlines() if line]
    return lines


# ---------------------------------------------------------------------------------------------
# Talking to the app, in-process, as Slack does


class DemoSlack:
    """The running app and the stand-in it talks to; requests are signed and dispatched in-process."""

    def __init__(self, bot: Bot, slack: SlackStandIn, workspace: Workspace) -> None:
        self.bot, self.slack, self.workspace = bot, slack, workspace

    def _dispatch(self, body: str, content_type: str) -> list[RecordedCall]:
        start = len(self.slack.calls)
        headers: dict[str, str | Sequence[str]] = {
            "content-type": content_type,
            **sign(body.encode(), SIGNING_SECRET),
        }
        response = self.bot.app.dispatch(BoltRequest(body=body, headers=headers))
        if response.status != 200:
            raise RuntimeError(f"the app answered {response.status}: {response.body[:200]}")
        return self.slack.calls[start:]

    def event(self, event: dict[str, Any]) -> list[RecordedCall]:
        """As in production: the event is stored in the inbox before the ack, then processed."""
        start = len(self.slack.calls)
        if not self.bot.inbox.accept(self.workspace.event_callback(event)):
            raise RuntimeError("the inbox refused an event")
        self.bot.inbox.drain()
        return self.slack.calls[start:]

    def command(self, text: str, *, user: str, channel: str) -> list[RecordedCall]:
        fields = self.workspace.slash_command(text, self.slack.response_url(), user=user, channel=channel)
        return self._dispatch(urlencode(fields), "application/x-www-form-urlencoded")

    def interactive(self, payload: dict[str, Any]) -> list[RecordedCall]:
        return self._dispatch(
            urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded"
        )

    def notes(self) -> list[NoteView]:
        """The notes captured from Slack (the imported CRM deals are the digest's history)."""
        ctx = self.bot.services.ctx
        return [n for n in iter_notes(ctx.session_factory, ctx.team_id) if n.source != "import"]


# ---------------------------------------------------------------------------------------------
# Replaying the traffic


@dataclass
class Step:
    """One line of the replay as the terminal shows it: who did what, and what the bot did."""

    day: str
    time: str
    channel: str
    who: str
    where: str  # "" for a channel message; ", in a thread" …
    action: str  # "" for a post; "edited …" / "deleted …"
    quote: str
    replies: list[str]


@dataclass
class Replay:
    posts: int = 0
    edits: int = 0
    deletes: int = 0
    channels: list[str] = field(default_factory=list)
    first: str = ""
    last: str = ""
    steps: list[Step] = field(default_factory=list)
    ts_of: dict[str, str] = field(default_factory=dict)  # message id -> its ts
    chatter: list[str] = field(default_factory=list)  # ids of people's messages the bot left alone
    chatter_examples: list[tuple[str, str]] = field(default_factory=list)
    bot_posts: Counter[str] = field(default_factory=Counter)  # ignored integration posts, by bot name
    notes_by_kind: dict[str, int] = field(default_factory=dict)
    captured: int = 0
    retracted: int = 0
    labelled: int = 0
    kind_right: int = 0
    outcomes_expected: int = 0
    outcomes_found: int = 0
    false_alarms: int = 0
    account_right: int = 0
    competitor_right: int = 0
    reasons_right: int = 0
    disagreements: list[tuple[str, str]] = field(default_factory=list)  # (message id, what differs)
    reasons_differ: list[str] = field(default_factory=list)  # ids where only the reasons differ


def _who(line: TrafficLine) -> str:
    return f"{line.bot} (bot)" if line.bot else f"@{_user_name(line.user or '')}"


def _user_name(user_id: str) -> str:
    return user_id.removeprefix("U0").lower() or user_id


def _event_for(line: TrafficLine, ts: str, thread_ts: str | None, ws: Workspace) -> dict[str, Any]:
    channel = CHANNEL_IDS[line.channel]
    if line.bot:
        bot_id = "B0" + re.sub(r"[^A-Z0-9]", "", line.bot.upper())[:9]
        return ws.bot_message(channel, line.text, ts, name=line.bot, bot_id=bot_id)
    user = line.user or "U0MAYA"
    if line.broadcast and thread_ts:
        return ws.thread_broadcast(channel, line.text, ts, thread_ts, user=user)
    return ws.message(channel, line.text, ts, user=user, thread_ts=thread_ts)


_DID = {
    "chat.postMessage": "icp-bot, in the thread",
    "chat.postEphemeral": "icp-bot, privately",
    "chat.update": "icp-bot updated its reply",
}


def reply_lines(calls: Sequence[RecordedCall], users: Mapping[str, str]) -> list[str]:
    """What the bot did in Slack while handling one request (buttons left out: explained once)."""
    lines: list[str] = []
    for call in calls:
        if call.method in _DID:
            body = [b for b in message_lines(call.args, users) if not b.startswith("[")]
            where = (
                _DID[call.method]
                if call.args.get("thread_ts") or call.method != "chat.postMessage"
                else "icp-bot"
            )
            lines.append(f"{where}: {' '.join(body)}")
        elif call.method == "chat.delete":
            lines.append("icp-bot deleted its reply")
        elif call.method.startswith("reactions."):
            lines.append(f"icp-bot {'added' if call.method.endswith('add') else 'removed'} a ✅ reaction")
    return lines


def _note_state(note: NoteView | None) -> str:
    if note is None:
        return "not an outcome, nothing logged"
    if note.status != "active":
        return "note retracted" + (
            " (the new text is not an outcome)" if note.retracted_reason == "edited" else ""
        )
    return f"note now {kind_label(note.kind)} · {note.account or 'account unknown'}"


def _short_day(value: datetime) -> str:
    return f"{value:%b} {value.day}"


def _step(line: TrafficLine) -> Step:
    return Step(
        f"{line.at:%a %b} {line.at.day}", f"{line.at:%H:%M}", f"#{line.channel}", _who(line), "", "", "", []
    )


def replay_traffic(demo: DemoSlack, traffic: Sequence[TrafficLine]) -> Replay:
    """Send every line to the app in order, as Slack would, and note what the bot did."""
    users = demo.workspace.users
    replay = Replay(channels=[f"#{c}" for c in dict.fromkeys(line.channel for line in traffic)])
    replay.first, replay.last = _short_day(traffic[0].at), _short_day(traffic[-1].at)
    text_of: dict[str, str] = {}
    line_of: dict[str, TrafficLine] = {}  # each message as it stands after its edits
    for number, line in enumerate(traffic, start=1):
        channel, ts, step = CHANNEL_IDS[line.channel], message_ts(line, number), _step(line)
        target = line.edit_of or line.delete_of
        if target:
            original, original_ts = line_of[target], replay.ts_of[target]
            if original.at.date() == line.at.date():
                step.action = (
                    f"{'edited' if line.edit_of else 'deleted'} their message of {original.at:%H:%M}"
                )
            else:
                step.action = (
                    f"{'edited' if line.edit_of else 'deleted'} their message of {_short_day(original.at)}"
                )
            if line.edit_of:
                replay.edits += 1
                event = demo.workspace.message_changed(
                    channel, original_ts, line.text, text_of[target], user=line.user or "U0MAYA", edited_at=ts
                )
                step.quote = one_line(line.text, users)
                text_of[target] = line.text
                line_of[target] = replace(original, text=line.text, expect=line.expect)
            else:
                replay.deletes += 1
                event = demo.workspace.message_deleted(
                    channel, original_ts, text_of[target], user=line.user or ""
                )
                step.quote = one_line(text_of[target], users)
            calls = demo.event(event)
            note = next((n for n in demo.notes() if n.channel == channel and n.ts == original_ts), None)
            step.replies = [f"{'edited' if line.edit_of else 'deleted'} → {_note_state(note)}"]
            step.replies += reply_lines(calls, users)
            replay.steps.append(step)
            continue
        replay.posts += 1
        replay.ts_of[line.id], text_of[line.id], line_of[line.id] = ts, line.text, line
        thread_ts = replay.ts_of.get(line.thread_of) if line.thread_of else None
        replies = reply_lines(demo.event(_event_for(line, ts, thread_ts, demo.workspace)), users)
        if not replies:
            if line.bot:
                replay.bot_posts[line.bot] += 1
            else:
                replay.chatter.append(line.id)
            continue
        if thread_ts:
            step.where = ", in a thread" + (" and to the channel" if line.broadcast else "")
        step.quote, step.replies = one_line(line.text, users), replies
        replay.steps.append(step)
    _examples(replay, line_of, users)
    _score(replay, demo.notes(), traffic, line_of)
    return replay


_OUTCOME_WORDS = re.compile(r"\b(lost|lose|renew\w*|won|signed|sign|churn\w*)\b", re.IGNORECASE)


def _examples(replay: Replay, line_of: Mapping[str, TrafficLine], users: Mapping[str, str]) -> None:
    """A few messages the bot rightly left alone although they sound like outcomes."""
    for message_id in replay.chatter:
        line = line_of[message_id]
        if line.expect and line.expect.kind is None and _OUTCOME_WORDS.search(line.text):
            replay.chatter_examples.append((message_id, one_line(line.text, users, 80)))
        if len(replay.chatter_examples) == 3:
            break


def _score(
    replay: Replay,
    notes: Sequence[NoteView],
    traffic: Sequence[TrafficLine],
    line_of: Mapping[str, TrafficLine],
) -> None:
    """The notes by kind, and how far the machine's labels agree with the hand labels."""
    kinds = Counter(n.kind for n in notes if n.status == "active" and n.kind)
    replay.notes_by_kind = {kind_label(k): kinds[k] for k in KIND_LABELS if kinds[k]}
    replay.captured = sum(kinds.values())
    replay.retracted = sum(1 for n in notes if n.status != "active")
    by_ts = {(n.channel, n.ts): n for n in notes if n.status == "active"}
    deleted = {line.delete_of for line in traffic if line.delete_of}
    for message_id, line in line_of.items():
        expect = line.expect
        if message_id in deleted or expect is None:
            continue
        got = by_ts.get((CHANNEL_IDS[line.channel], replay.ts_of[message_id]))
        replay.labelled += 1
        replay.kind_right += (got.kind if got else None) == expect.kind
        if expect.kind is None:
            if got is not None:
                replay.false_alarms += 1
                replay.disagreements.append((message_id, f"logged {_labels(got)}; labelled not an outcome"))
            continue
        replay.outcomes_expected += 1
        if got is None:
            replay.disagreements.append((message_id, f"missed: {_labels(expect)}"))
        elif got.kind != expect.kind:
            logged = f"{kind_label(got.kind)} · {got.account or 'account unknown'}"
            replay.disagreements.append((message_id, f"logged {logged}; labelled {kind_label(expect.kind)}"))
        else:
            replay.outcomes_found += 1
            _compare(replay, message_id, got, expect)


def _compare(replay: Replay, message_id: str, got: NoteView, expect: Expected) -> None:
    wrong = []
    if got.account == expect.account:
        replay.account_right += 1
    else:
        wrong.append(f"account {got.account or 'unknown'} (is {expect.account or 'unknown'})")
    if got.competitor == expect.competitor:
        replay.competitor_right += 1
    else:
        wrong.append(f"competitor {got.competitor or 'none'} (is {expect.competitor or 'none'})")
    if set(got.reasons) == set(expect.reasons):
        replay.reasons_right += 1
    elif wrong:
        wrong.append(f"reasons {_reasons(got.reasons)} (are {_reasons(expect.reasons)})")
    else:
        replay.reasons_differ.append(message_id)
    if wrong:
        replay.disagreements.append((message_id, f"{kind_label(got.kind)}, but " + "; ".join(wrong)))


def _reasons(reasons: Sequence[str]) -> str:
    return ", ".join(r.replace("_", " ") for r in reasons) or "none"


def _labels(labels: NoteView | Expected) -> str:
    parts = [kind_label(labels.kind), labels.account or "account unknown"]
    if labels.competitor:
        parts.append(f"vs {labels.competitor}")
    parts += [r.replace("_", " ") for r in labels.reasons]
    return " · ".join(parts)


# ---------------------------------------------------------------------------------------------
# A person corrects a note


@dataclass
class Correction:
    message_id: str
    note_id: int
    who: str
    quote: str
    before: list[str]
    modal_title: str
    prefilled: list[tuple[str, str]]
    chosen: list[tuple[str, str]]
    after: list[str]


def _final_lines(traffic: Sequence[TrafficLine]) -> dict[str, TrafficLine]:
    """Each message as it stands at the end: edits applied, deleted ones left out."""
    final: dict[str, TrafficLine] = {}
    for line in traffic:
        if line.edit_of and line.edit_of in final:
            final[line.edit_of] = replace(final[line.edit_of], text=line.text, expect=line.expect)
        elif line.delete_of:
            final.pop(line.delete_of, None)
        else:
            final[line.id] = line
    return final


def pick_wrong_note(
    notes: Sequence[NoteView], traffic: Sequence[TrafficLine], ts_of: Mapping[str, str]
) -> tuple[NoteView, TrafficLine, Expected] | None:
    """The first active note whose kind is wrong (else its account, else competitor or reasons)."""
    by_ts = {(n.channel, n.ts): n for n in notes if n.status == "active"}
    candidates: list[tuple[int, NoteView, TrafficLine, Expected]] = []
    for message_id, line in _final_lines(traffic).items():
        note = by_ts.get((CHANNEL_IDS[line.channel], ts_of.get(message_id, "")))
        expect = line.expect
        if note is None or expect is None or expect.kind is None:
            continue
        if note.kind != expect.kind:
            rank = 0
        elif note.account != expect.account:
            rank = 1
        elif note.competitor != expect.competitor or set(note.reasons) != set(expect.reasons):
            rank = 2
        else:
            continue
        candidates.append((rank, note, line, expect))
    if not candidates:
        return None
    _, note, line, expect = min(candidates, key=lambda c: c[0])
    return note, line, expect


def _prefilled(view: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The modal's fields and the values the bot pre-filled, as a person sees them."""

    def label_of(option: Any) -> str:
        return str(((option or {}).get("text") or {}).get("text") or "") if isinstance(option, dict) else ""

    shown = []
    for block in view.get("blocks") or []:
        if block.get("type") != "input":
            continue
        label = str((block.get("label") or {}).get("text") or block.get("block_id"))
        element = block.get("element") or {}
        if "initial_option" in element:
            value = label_of(element["initial_option"])
        elif "initial_options" in element:
            value = ", ".join(label_of(o) for o in element["initial_options"])
        else:
            value = str(element.get("initial_value") or "")
        shown.append((label, value or "—"))
    return shown


def submitted_values(expect: Expected) -> dict[str, dict[str, Any]]:
    """The Change modal's `view.state.values` as Slack sends them when the person saves it."""

    def option(value: str, label: str) -> dict[str, Any]:
        return {"text": {"type": "plain_text", "text": label, "emoji": True}, "value": value}

    kind = {"type": "static_select", "selected_option": option(expect.kind or "", kind_label(expect.kind))}
    reasons = [option(r, r.replace("_", " ")) for r in expect.reasons]
    return {
        "kind": {"kind": kind},
        "account": {"account": {"type": "plain_text_input", "value": expect.account}},
        "reasons": {"reasons": {"type": "multi_static_select", "selected_options": reasons}},
        "competitor": {"competitor": {"type": "plain_text_input", "value": expect.competitor}},
    }


def correct_one_note(
    demo: DemoSlack, traffic: Sequence[TrafficLine], ts_of: Mapping[str, str]
) -> Correction | None:
    """The author of a wrongly tagged message clicks Change, fixes the labels and saves."""
    picked = pick_wrong_note(demo.notes(), traffic, ts_of)
    if picked is None:
        return None
    note, line, expect = picked
    users = demo.workspace.users
    person = line.user or "U0DANA"  # an integration's post is corrected by the sales manager
    before = _confirmation_lines(demo, note)
    click = demo.workspace.block_actions(
        surface.NOTE_CHANGE,
        str(note.id),
        response_url=demo.slack.response_url(),
        channel=note.channel,
        message_ts=note.confirmation_ts or note.ts,
        user=person,
    )
    click["actions"][0]["block_id"] = "note_actions"
    opened = [c for c in demo.interactive(click) if c.method == "views.open"]
    if not opened or not demo.slack.state.views:
        raise RuntimeError("clicking Change opened no modal")
    view = list(demo.slack.state.views.values())[-1]  # as the stand-in stored it, with its id
    demo.interactive(demo.workspace.view_submission(view, submitted_values(expect), user=person))
    _wait_for_tagger_refresh()
    chosen = [
        ("Outcome", kind_label(expect.kind)),
        ("Account", expect.account or "—"),
        ("Reasons", _reasons(expect.reasons) if expect.reasons else "—"),
        ("Competitor", expect.competitor or "—"),
    ]
    return Correction(
        message_id=line.id,
        note_id=note.id,
        who=f"@{_user_name(person)}",
        quote=one_line(line.text, users),
        before=before,
        modal_title=str((view.get("title") or {}).get("text") or "Change"),
        prefilled=_prefilled(view),
        chosen=chosen,
        after=_confirmation_lines(demo, note),
    )


def _confirmation_lines(demo: DemoSlack, note: NoteView) -> list[str]:
    """The bot's reply as it stands in the channel now (the stand-in keeps what was posted and updated)."""
    for message in demo.slack.messages_in(note.channel):
        if message.get("ts") == note.confirmation_ts:
            return message_lines(message, demo.workspace.users)
    return []


def _wait_for_tagger_refresh(timeout: float = 30.0) -> None:
    """A correction rebuilds the tagger on a background thread; let it finish before going on."""
    for thread in threading.enumerate():
        if thread.name == "tagger-refresh":
            thread.join(timeout)


# ---------------------------------------------------------------------------------------------
# /icp-fit


@dataclass
class FitCheck:
    title: str
    who: str
    channel: str
    command: str
    answer: list[str]
    clicked: str = ""
    picked: list[str] = field(default_factory=list)


def _response(calls: Sequence[RecordedCall]) -> RecordedCall | None:
    return next((c for c in reversed(calls) if c.method == "response_url"), None)


def _first_suggestion(args: Mapping[str, Any]) -> tuple[str, str, str] | None:
    for block in args.get("blocks") or []:
        for element in block.get("elements") or [] if block.get("type") == "actions" else []:
            action_id = str(element.get("action_id") or "")
            if action_id.startswith(surface.FIT_PICK):
                return (
                    action_id,
                    str(element.get("value") or ""),
                    str((element.get("text") or {}).get("text")),
                )
    return None


def run_fit_checks(demo: DemoSlack, queries: Sequence[tuple[str, str]]) -> list[FitCheck]:
    """`/icp-fit` as a person types it; where the bot offers suggestions, click the first."""
    users = demo.workspace.users
    checks = []
    for title, query in queries:
        answer = _response(demo.command(query, user="U0MAYA", channel="C0DEALS"))
        lines = message_lines(answer.args, users) if answer else ["(no answer)"]
        check = FitCheck(title, "@maya", "#deals", f"{surface.FIT_COMMAND} {query}", lines)
        pick = _first_suggestion(answer.args if answer else {})
        if pick is not None:
            action_id, value, label = pick
            click = demo.workspace.block_actions(
                action_id, value, response_url=demo.slack.response_url(), channel="C0DEALS", ephemeral=True
            )
            click["actions"][0]["block_id"] = "fit_pick"
            picked = _response(demo.interactive(click))
            check.clicked = label
            check.picked = message_lines(picked.args, users) if picked else ["(no answer)"]
        checks.append(check)
    return checks


def _fit_queries(notes: Sequence[NoteView], correction: Correction | None) -> list[tuple[str, str]]:
    """An account with outcomes (the corrected note's, when there is one), a typo, a prospect."""
    active = [n for n in notes if n.status == "active" and n.account_id is not None and n.account]
    corrected = next((n for n in active if correction and n.id == correction.note_id), None)
    busiest = Counter(n.account for n in active).most_common(1)
    account = corrected.account if corrected else (busiest[0][0] if busiest else "Acme Corp")
    return [
        ("An account with captured outcomes", str(account)),
        ("A typo: the bot offers suggestions, and Maya clicks the first", "Contsoo"),
        (
            "A prospect that is not in the CRM, checked ad hoc",
            "Newco industry=Software employees=300 country=Finland",
        ),
    ]


# ---------------------------------------------------------------------------------------------
# The demo


@dataclass
class DemoRun:
    """What a demo run did, for tests and callers that want more than the printout."""

    folder: Path
    database_url: str
    config_path: Path
    traffic: list[TrafficLine]
    replay: Replay
    correction: Correction | None
    checks: list[FitCheck]
    notes: list[NoteView]
    calls: list[RecordedCall]


def _out(part: str, **context: Any) -> None:
    print(render("demo.txt.j2", part=part, **context), end="", flush=True)


def _fresh_database(db_path: Path) -> str:
    for stale in (
        db_path,
        db_path.with_name(db_path.name + "-wal"),
        db_path.with_name(db_path.name + "-shm"),
    ):
        stale.unlink(missing_ok=True)
    return f"sqlite:///{db_path}"


def _import_accounts(database_url: str, config: Config, accounts: Path) -> None:
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        session_factory = make_session_factory(engine)
        started = time.perf_counter()
        summary = import_accounts(session_factory, LOCAL_TEAM, accounts.read_bytes(), accounts.name)
        seconds = time.perf_counter() - started
        overview = overview_text(score_all(session_factory, LOCAL_TEAM, config.icp, limit=5), None)
        deals_path = bundled_resource(DEALS_FILE)
        started = time.perf_counter()
        deals = import_outcomes(
            session_factory,
            LOCAL_TEAM,
            deals_path.read_bytes(),
            deals_path.name,
            icp=config.icp,
            taxonomy=config.taxonomy,
        )
        deals_text = outcomes_import_text(deals, time.perf_counter() - started).rstrip()
    finally:
        engine.dispose()
    _out(
        "accounts",
        s=summary,
        seconds=seconds,
        file=accounts.name,
        overview=overview,
        deals_file=deals_path.name,
        deals=deals_text,
    )


def play(folder: Path | None = None) -> DemoRun:
    """Run the demo, printing as it goes; return what happened."""
    started = time.perf_counter()
    workdir = (folder or Path(tempfile.mkdtemp(prefix="icp-bot-demo-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    db_path, log_path = workdir / "demo.db", workdir / "bot.log"
    config_path = write_demo_config(workdir)
    config = load_config(config_path)
    traffic_path = bundled_resource(TRAFFIC_FILE)
    traffic = load_traffic(traffic_path, config.digest.timezone)
    database_url = _fresh_database(db_path)
    _out("where", folder=workdir, db=db_path, config=config_path, log=log_path, traffic=traffic_path)
    _import_accounts(database_url, config, bundled_resource("sample_accounts.csv"))

    users = {u: _user_name(u) for u in dict.fromkeys(line.user for line in traffic if line.user)}
    with bot_log(log_path) as levels, SlackStandIn(channels=CHANNELS) as slack:
        settings = Settings(
            database_url=database_url,
            config_path=config_path,
            config_is_bundled=False,
            team_id=LOCAL_TEAM,  # the workspace the CLI imported the accounts into
            log_level="INFO",
            slack_bot_token=slack.token,
            slack_signing_secret=SIGNING_SECRET,
            slack_api_url=slack.base_url,
        )
        bot = build_bot(settings, mode="http", process_before_response=True)
        try:
            workspace = Workspace(team_id=slack.team_id, bot_user_id=slack.bot_user_id, users=users)
            demo = DemoSlack(bot, slack, workspace)
            replay = replay_traffic(demo, traffic)
            _out("replay", r=replay)
            correction = correct_one_note(demo, traffic, replay.ts_of)
            _out("correction", c=correction)
            checks = run_fit_checks(demo, _fit_queries(demo.notes(), correction))
            _out("fit", checks=checks)
            show_digest(bot, workdir)
            notes = demo.notes()
        finally:
            bot.shutdown()
        calls = slack.calls
    methods = Counter(c.method for c in calls if c.method != "socket.connect")
    _out(
        "notes",
        database_url=database_url,
        active=sum(1 for n in notes if n.status == "active"),
        retracted=sum(1 for n in notes if n.status != "active"),
        corrected=sum(1 for n in notes if n.corrected_by),
        calls=methods.most_common(),
        log=log_path,
        warnings=levels["WARNING"] + levels["ERROR"] + levels["CRITICAL"],
        config=config_path,
        seconds=time.perf_counter() - started,
    )
    return DemoRun(workdir, database_url, config_path, traffic, replay, correction, checks, notes, calls)


def show_digest(bot: Bot, folder: Path) -> Digest | None:
    """Post the digest of the replayed weeks the way the Monday job does, and show it."""
    poster = bot.digest
    if poster is None:
        return None
    settings = poster.settings
    zone = ZoneInfo(settings.timezone)
    as_of = datetime(*DIGEST_DAY, settings.hour, settings.minute, tzinfo=zone)
    built: list[Digest] = []
    poster.on_built = built.append
    poster.backoff = ()
    result = poster.post(as_of=as_of, trigger="demo")
    if not built:
        return None
    digest = built[0]
    chart_path, html_path = folder / "digest.png", folder / "digest.html"
    chart = digest_chart_png(digest)
    chart_path.write_bytes(chart)
    html_path.write_text(digest_html(digest, chart), encoding="utf-8")
    _out(
        "digest",
        as_of=f"{as_of:%A %b} {as_of.day}, {as_of:%H:%M} {settings.timezone}",
        as_of_date=as_of.date().isoformat(),
        posted=result.state == "posted",
        state=result.state,
        text=digest_text(digest),
        chart=chart_path,
        html=html_path,
    )
    return digest


def run_demo(folder: Path | None = None) -> int:
    play(folder)
    return 0
