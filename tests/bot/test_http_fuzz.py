"""Property-based tests of POST /slack/events (issue 5): thousands of generated bodies, in-process.

The real app (`build_bot` in HTTP mode, every listener, the real Web API client pointed at the
Slack stand-in) is called through its WSGI application, so a case takes a few milliseconds.
Properties, judged only by what an outsider sees (HTTP status, database row counts, the calls
the stand-in recorded):

- a well-signed request never gets a 5xx, whatever its body;
- a request whose signature or timestamp is wrong gets 401, and changes no row of any table;
- nothing the bot sends to Slack, anywhere in a call's arguments, would ping
  (`<!channel>`, `<!here…>`, `<!everyone>`, `<!subteam…>`), whatever people wrote.

Runs on SQLite, and on PostgreSQL (fewer examples) when TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from wsgiref.validate import validator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from bot.app import Bot, build_bot, make_web_client
from bot.payloads import Workspace, sign
from bot.render import KIND_LABELS
from bot.server import make_wsgi_app
from bot.settings import Settings, bundled_resource
from bot.standin import RecordedCall, SlackStandIn
from insights.service import import_accounts
from storage.engine import make_engine, make_session_factory
from storage.models import Base
from storage.schema import upgrade
from tests.bot.blackbox import write_config
from tests.conftest import PostgresSchema

SECRET = "fuzz0signing0secret0f00dfeed4242"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
PINGS = ("<!channel>", "<!here", "<!everyone>", "<!subteam")
SCALE = {"sqlite": 1.0, "postgresql": 0.2}  # PostgreSQL: the same properties, fewer examples
# Every kind of Slack markup and text that has bitten chat bots: special mentions (plain and
# labelled), user/channel mentions, links, Slack's own escapes, formatting, emoji, RTL marks and
# overrides, zero-width and combining characters, a BOM, line separators, wide and ligature forms
# (NUL: test_a_nul_character_does_not_stop_capture).
MARKUP = [
    "<!channel>", "<!here>", "<!here|here>", "<!everyone>", "<!subteam^S0SALES|@sales>", "<!subteam^S0SALES>",
    "<!date^1392734382^{date_short}|Feb 18>", "<!channel|channel>", "<@U0MAYA>", "<@U0BOT>", "<@W0X|x>",
    "<#C0DEALS|deals>", "<#C0CHURN>", "<https://x.example/a?b=1&amp;c=2|label>", "<mailto:a@b.test|mail>",
    "<https://x.example>", "&amp;", "&lt;", "&gt;", "&lt;!channel&gt;", "&amp;lt;", "<", ">", "&", "|",
    "*bold*", "_it_", "~gone~", "`code`", "```\nblock\n```", "> quote", ":fire:", ":+1::skin-tone-3:",
    "🔥", "👩🏽‍💻", "🇫🇮", "\u200b", "\u200d", "\u200f", "\u202e", "\u2066", "\u0301", "e\u0301", "\ufeff",
    "\u2028", "\x1b[31m", "\t", "\n", "\r\n", " ", "مرحبا", "שלום", "日本語", "Ｆｕｌｌ", "ﬁ",
    "İ", "ß",
]  # fmt: skip
OUTCOMES = [
    "Lost Contoso to Gong on price",
    "Fourth Coffee not renewing in Jan, moving to ChurnZero. 212k :(",
    "Tailspin Toys churned. 58k. our champion left",
    "closed won Contoso Ltd $62k ARR, beat Clari",
    "Lost Fabrikam to Outreach, no budget",
    "Litware &amp; Sons Publishing signed!! 3 yr",
]
CHANNELS = ["C0DEALS", "C0DEALS", "C0CHURN", "C0OTHER", "D0DIRECT", "", "not a channel"]
USERS = ["U0MAYA", "U0REP", "U0BOT", "W0GUEST", ""]
ACTIONS = ["fit_share", "fit_pick_0", "fit_pick_3", "note_change", "note_not_outcome", "no_such_action"]


# -- the bot under test ------------------------------------------------------------------------------


class FuzzBot:
    """The app in this process, its WSGI entry point, and what to judge it by.

    A plain class with a short repr: strategies take it as an argument, and Hypothesis prints
    their arguments (a dataclass would be printed field by field, settings and all).
    """

    def __init__(self, bot: Bot, slack: SlackStandIn, engine: Engine, database: str) -> None:
        self.bot, self.slack, self.engine, self.database = bot, slack, engine, database
        # wsgiref's validator checks the WSGI protocol on every call
        self.app: Callable[[dict[str, Any], Any], Iterable[bytes]] = validator(make_wsgi_app(bot))
        # No worker thread: each request's events are processed by `post` before it returns
        # (EventInbox.drain), so every example is judged by its own effects, and shrinks.
        self.workspace = Workspace(team_id=slack.team_id, bot_user_id=slack.bot_user_id)
        self._ts = itertools.count(1_761_900_000, 3)

    def __repr__(self) -> str:
        return f"FuzzBot({self.database})"

    def examples(self, n: int) -> int:
        return max(5, int(n * SCALE[self.database]))

    def next_ts(self) -> str:
        """A fresh message ts: every example is a new message, so replays and shrinking see the same."""
        stamp = next(self._ts)
        return f"{stamp}.{stamp % 999_999:06d}"

    def post(self, body: bytes, headers: dict[str, str], *, path: str = "/slack/events") -> tuple[int, bytes]:
        """One request through the WSGI app, as waitress hands it over; returns status and body."""
        environ: dict[str, Any] = {
            "REQUEST_METHOD": "POST", "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "3000", "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1", "CONTENT_LENGTH": str(len(body)),
            "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }  # fmt: skip
        for name, value in headers.items():
            if name.lower() == "content-type":
                environ["CONTENT_TYPE"] = value
            else:
                environ["HTTP_" + name.upper().replace("-", "_")] = value
        statuses: list[str] = []

        def start_response(status: str, _headers: list[tuple[str, str]], _exc: Any = None) -> Any:
            statuses.append(status)
            return lambda _data: None

        result = self.app(environ, start_response)
        try:
            content = b"".join(result)
        finally:
            getattr(result, "close", lambda: None)()
        self.bot.inbox.drain()  # what the worker would do next
        return int(statuses[-1].split()[0]), content

    def signed(self, request: Request, *, timestamp: int | None = None) -> tuple[int, bytes]:
        return self.post(request.body, {**request.headers, **sign(request.body, SECRET, timestamp)})

    def row_counts(self) -> dict[str, int]:
        """The number of rows in every table of the schema (one query)."""
        tables = Base.metadata.sorted_tables
        counts = select(*(select(func.count()).select_from(t).scalar_subquery() for t in tables))
        with self.engine.connect() as connection:
            row = connection.execute(counts).one()
        return {table.name: int(n) for table, n in zip(tables, row, strict=True)}


@dataclass(frozen=True)
class Request:
    body: bytes
    headers: dict[str, str]
    label: str = ""

    @staticmethod
    def json(payload: Any, *, ascii_only: bool = True, label: str = "") -> Request:
        body = json.dumps(payload, ensure_ascii=ascii_only).encode()
        return Request(body, {"Content-Type": JSON}, label)

    @staticmethod
    def form(fields: dict[str, str], *, label: str = "") -> Request:
        return Request(urlencode(fields).encode(), {"Content-Type": FORM}, label)

    def __repr__(self) -> str:  # what Hypothesis prints for a falsifying example
        more = "…" if len(self.body) > 600 else ""
        return f"Request({self.label!r}, {self.headers!r}, {self.body[:600]!r}{more})"


@contextlib.contextmanager
def fuzz_bot_on(database: str, folder: Path, *, client_timeout: int | None = None) -> Iterator[FuzzBot]:
    """A migrated database with the sample accounts, the stand-in, and the app built on them (its
    Web API client as in production, with `client_timeout` seconds instead of the usual timeout)."""
    schema = PostgresSchema() if database == "postgresql" else None  # skips without TEST_DATABASE_URL
    url = schema.schema_url if schema is not None else f"sqlite:///{folder / 'bot.db'}"
    try:
        engine = make_engine(url)
        upgrade(engine)
        accounts = bundled_resource("sample_accounts.csv")
        import_accounts(make_session_factory(engine), "T0STANDIN", accounts.read_bytes(), accounts.name)
        # C0OTHER: a channel the bot is in without capturing there (where mentions are answered).
        channels = {"C0DEALS": "deals", "C0CHURN": "churn", "C0DIGEST": "icp-digest", "C0OTHER": "random"}
        with SlackStandIn(channels=channels) as slack:
            settings_ = Settings(
                database_url=url, config_path=write_config(folder), config_is_bundled=False, team_id=None,
                log_level="INFO", slack_bot_token=slack.token, slack_signing_secret=SECRET,
                slack_api_url=slack.base_url,
            )  # fmt: skip
            client = make_web_client(settings_)
            if client_timeout is not None:
                client.timeout = client_timeout
            bot = build_bot(settings_, mode="http", process_before_response=True, client=client)
            try:
                yield FuzzBot(bot, slack, engine, database)
            finally:
                bot.shutdown()
                engine.dispose()
    finally:
        if schema is not None:
            schema.drop()


DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module", params=DATABASES)
def fuzz_bot(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzBot]:
    with fuzz_bot_on(request.param, tmp_path_factory.mktemp(f"fuzz-{request.param}")) as bot:
        yield bot


# -- strategies ---------------------------------------------------------------------------------------
# Built once here: a strategy made inside a draw is validated again on every example.

# No NUL: see test_a_nul_character_does_not_stop_capture.
unicode_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=24)
fragments = st.one_of(st.sampled_from(MARKUP), st.sampled_from(OUTCOMES), unicode_text)
message_text = st.lists(fragments, max_size=14).map("".join)
outcome_text = st.builds(lambda outcome, rest: outcome + rest, st.sampled_from(OUTCOMES), message_text)
# Slack cuts a message at 40,000 characters: the longest text a well-signed request can carry.
huge_text = st.tuples(st.sampled_from(MARKUP + OUTCOMES), st.integers(39_000, 40_000)).map(
    lambda pair: ((pair[0] + " ") * (40_000 // (len(pair[0]) + 1) + 1))[: pair[1]]
)
junk: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | unicode_text | st.sampled_from(MARKUP),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(unicode_text, children, max_size=3),
    max_leaves=6,
)
booleans = st.booleans()
one_in_4 = st.integers(0, 3).map(lambda n: n == 0)
one_in_6 = st.integers(0, 5).map(lambda n: n == 0)
one_in_10 = st.integers(0, 9).map(lambda n: n == 0)
channels = st.sampled_from(CHANNELS)
users = st.sampled_from(USERS)
message_kinds = st.sampled_from(["message", "thread", "bot", "broadcast", "mention", "edit", "delete"])
bot_names = st.sampled_from(["Salesforce", "Standup Bot"])
fit_queries = st.one_of(message_text, st.sampled_from(["", " ", "Contoso", "Acme industry=Software"]))
prospect_fields = st.sets(
    st.sampled_from(["industry", "employees", "country", "annual_revenue", "domain", "bogus"])
)
commands = st.sampled_from(["/icp-fit", "/icp-fit", "/icp-fit", "/other", ""])
odd_response_urls = st.sampled_from(["", "not a url", "http://127.0.0.1:9/"])  # never a host outside
odd_form_values = unicode_text | st.sampled_from(MARKUP)
note_ids = st.integers(-1, 80)
existing_note_ids = st.integers(1, 20)  # notes the messages before have most likely created
authors = st.sampled_from(["U0MAYA", "U0MAYA", "U0MAYA", *USERS])  # mostly the author of the notes
actions = st.sampled_from(ACTIONS)
action_values = st.one_of(
    note_ids.map(str),
    st.builds(lambda q: json.dumps({"q": q}), message_text),
    st.builds(lambda i: json.dumps({"id": i}), note_ids),
    junk.map(json.dumps),
    unicode_text,
)
correction_kinds = st.sampled_from([*KIND_LABELS, *KIND_LABELS, "", "bogus"])
accounts = message_text | st.sampled_from(OUTCOMES)
reason_lists = st.lists(message_text, max_size=3)
private_metadata = st.one_of(
    existing_note_ids.map(lambda i: json.dumps({"note": i, "channel": "C0DEALS", "ts": ""})),
    existing_note_ids.map(lambda i: json.dumps({"note": i})),
    note_ids.map(lambda i: json.dumps({"note": i})),
    unicode_text,
    junk.map(json.dumps),
)
content_types = st.sampled_from(
    [JSON, FORM, "text/plain", "multipart/form-data; boundary=x", f"{JSON}; charset=latin-1", ""]
)


@st.composite
def mutated(
    draw: st.DrawFn, value: dict[str, Any], extra_keys: tuple[str, ...] = (), keep: tuple[str, ...] = ()
) -> dict[str, Any]:
    """`value` with a few keys (not those in `keep`) deleted or given values of the wrong type."""
    result = dict(value)
    keys = sorted((set(result) | set(extra_keys)) - set(keep))
    for key in draw(st.lists(st.sampled_from(keys), max_size=3, unique=True)):
        if draw(booleans):
            result.pop(key, None)
        else:
            result[key] = draw(junk)
    return result


@st.composite
def message_events(
    draw: st.DrawFn, bot: FuzzBot, text: st.SearchStrategy[str] = message_text, *, shaped: bool = False
) -> Request:
    """An Events API request about a message: posted, in a thread, by a bot, a mention, an edit of
    an earlier message, a delete; sometimes with fields missing or of the wrong type (never when
    `shaped`: exactly what Slack sends)."""
    w = bot.workspace
    channel, user, ts, words = draw(channels), draw(users), bot.next_ts(), draw(text)
    kind = draw(message_kinds)
    if kind == "message":
        event = w.message(channel, words, ts, user=user)
    elif kind == "thread":
        event = w.message(channel, words, ts, user=user, thread_ts=ts if draw(booleans) else bot.next_ts())
    elif kind == "bot":
        event = w.bot_message(channel, words, ts, name=draw(bot_names))
    elif kind == "broadcast":
        event = w.thread_broadcast(channel, words, ts, bot.next_ts(), user=user)
    elif kind == "mention":
        event = w.app_mention(channel, f"<@U0BOT> {words}", ts, user=user)
    elif kind == "edit":
        event = w.message_changed(channel, ts, words, draw(text), user=user)
    else:
        event = w.message_deleted(channel, ts, words, user=user)
    # Odd fields, but not a `type` (test_odd_shapes_bolt_routes_on_get_no_5xx) nor a `subtype` or
    # `bot_profile` (test_odd_fields_of_an_event_are_ignored_without_an_error).
    if not shaped and draw(one_in_4):
        keep = ("type", "subtype", "bot_profile")
        event = draw(mutated(event, ("text", "hidden", "bot_id", "message"), keep=keep))
    body: Any = w.event_callback(event)
    if not shaped and draw(one_in_6):
        body = draw(mutated(body, ("event", "type", "event_id", "team_id", "authorizations")))
    return Request.json(body, ascii_only=draw(booleans), label=kind)


@st.composite
def edits_of_captured_messages(draw: st.DrawFn, bot: FuzzBot) -> list[Request]:
    """An outcome posted, then edited to generated text (the confirmation is updated or withdrawn)."""
    w, ts = bot.workspace, bot.next_ts()
    first = draw(outcome_text)
    then = draw(outcome_text) if draw(booleans) else draw(message_text)
    return [
        Request.json(w.event_callback(w.message("C0DEALS", first, ts, user="U0MAYA")), label="post"),
        Request.json(w.event_callback(w.message_changed("C0DEALS", ts, then, first)), label="edit"),
    ]


@st.composite
def slash_commands(draw: st.DrawFn, bot: FuzzBot) -> Request:
    text = draw(fit_queries)
    if draw(booleans):  # an ad-hoc prospect: its fields are echoed back in the answer
        text += " " + " ".join(f"{k}={draw(message_text)}" for k in sorted(draw(prospect_fields)))
    fields = bot.workspace.slash_command(text, bot.slack.response_url(), user=draw(users))
    fields["command"] = draw(commands)
    if draw(one_in_4):
        for key in draw(st.lists(st.sampled_from(sorted(fields)), max_size=3, unique=True)):
            fields[key] = draw(odd_response_urls if key == "response_url" else odd_form_values)
    return Request.form(fields, label="command")


def fit_query_with_markup(action: str, value: str) -> bool:
    """A fit button whose query holds markup: see test_a_fit_button_echoes_its_query_escaped."""
    try:
        decoded = json.loads(value)
    except ValueError:
        return False
    query = decoded.get("q") if isinstance(decoded, dict) else None
    return action.startswith("fit_") and isinstance(query, str) and "<" in query


@st.composite
def interactions(draw: st.DrawFn, bot: FuzzBot, *, shaped: bool = False) -> Request:
    """A button click or a modal submission with generated values; sometimes with fields missing or
    of the wrong type (never when `shaped`)."""
    w = bot.workspace
    if draw(booleans):
        action = draw(actions)
        value = draw(
            existing_note_ids.map(str) if action.startswith("note_") and draw(booleans) else action_values
        )
        if fit_query_with_markup(action, value):
            value = json.dumps({"q": "Contoso"})
        payload = w.block_actions(
            action, value, response_url=bot.slack.response_url(), user=draw(authors), ephemeral=draw(booleans)
        )
        label = "block_actions"
    else:
        reasons = [{"value": v} for v in draw(reason_lists)]
        values: dict[str, Any] = {
            "kind": {"kind": {"selected_option": {"value": draw(correction_kinds)}}},
            "account": {"account": {"value": draw(accounts)}},
            "competitor": {"competitor": {"value": draw(message_text)}},
            "reasons": {"reasons": {"selected_options": reasons}},
        }
        meta = draw(private_metadata)
        view = {"id": "V0FUZZ", "type": "modal", "callback_id": "note_correct", "private_metadata": meta}
        payload = w.view_submission(
            view, draw(mutated(values)) if draw(one_in_4) else values, user=draw(authors)
        )
        label = "view_submission"
    if not shaped and draw(one_in_4):  # (`view`, `actions` of another shape: test_odd_shapes_bolt_routes...)
        payload = draw(mutated(payload, ("type", "user", "container", "team"), keep=("view", "actions")))
    if draw(one_in_10):
        return Request.form({"payload": json.dumps(payload), "junk": draw(unicode_text)}, label=label)
    return Request.form({"payload": json.dumps(payload)}, label=label)


VALID_BODY = json.dumps(Workspace().event_callback(Workspace().message("C0DEALS", OUTCOMES[0], "1.000100")))
broken_body = st.one_of(
    st.binary(max_size=300),
    st.floats(0, 1).map(lambda cut: VALID_BODY[: int(cut * len(VALID_BODY))].encode()),
    junk.map(lambda j: json.dumps(j).encode()),
    st.builds(lambda p: urlencode({"payload": p}).encode(), unicode_text | junk.map(json.dumps)),
    unicode_text.map(lambda t: urlencode({"command": "/icp-fit", "text": t}).encode() + b"&%zz=%"),
    unicode_text.map(lambda t: t.encode("utf-8")),
    st.sampled_from([b"", b"{}", b"[]", b"null", b'"x"', b"\xef\xbb\xbf{}", b"{" * 5000 + b"}" * 5000]),
)


@st.composite
def broken_bodies(draw: st.DrawFn) -> Request:
    """Bodies that are not what Slack sends: truncated or invalid JSON, odd forms, raw bytes,
    JSON values that are not objects, under any content type."""
    body, content_type = draw(broken_body), draw(content_types)
    return Request(body, {"Content-Type": content_type} if content_type else {}, "broken")


def slack_requests(bot: FuzzBot) -> st.SearchStrategy[Request]:
    """What a well-signed request may carry: everything above, weighted to messages."""
    return st.one_of(
        message_events(bot), message_events(bot), slash_commands(bot), interactions(bot), broken_bodies()
    )


# -- judging ------------------------------------------------------------------------------------------


# Data a button, option or view carries back to the bot when clicked or submitted: Slack never
# shows it to anyone (a fit answer's Share button carries the query as typed, pings and all).
ROUND_TRIPPED = frozenset({"value", "private_metadata"})


def strings(value: Any) -> Iterator[str]:
    """Every string anywhere in a call's arguments (keys too; blocks and views included), except
    the round-tripped data above."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, bytes):
        yield value.decode("utf-8", "replace")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings(key)
            if key not in ROUND_TRIPPED:
                yield from strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings(item)


def pings(calls: Iterable[RecordedCall]) -> list[str]:
    return [
        f"{call.method}: …{text[max(0, text.find(p) - 80) : text.find(p) + 80]!r}…"
        for call in calls
        for text in strings(call.args)
        for p in PINGS
        if p in text
    ]


# -- properties ---------------------------------------------------------------------------------------


def fuzz(bot: FuzzBot, examples: int) -> settings:
    """`examples` on SQLite (fewer on PostgreSQL); no deadline: a case may wait on the database."""
    return settings(
        max_examples=bot.examples(examples),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


def test_well_signed_requests_never_get_a_5xx_and_never_make_the_bot_ping(fuzz_bot: FuzzBot) -> None:
    bot = fuzz_bot

    @fuzz(bot, 600)
    @given(request=slack_requests(bot))
    def well_signed(request: Request) -> None:
        start = len(bot.slack.calls)
        status, body = bot.signed(request)
        assert status < 500, body[:300]
        assert pings(bot.slack.calls[start:]) == []

    well_signed()


def test_edits_of_captured_messages_never_make_the_bot_ping(fuzz_bot: FuzzBot) -> None:
    bot = fuzz_bot

    @fuzz(bot, 80)
    @given(requests=edits_of_captured_messages(bot))
    def edited(requests: list[Request]) -> None:
        start = len(bot.slack.calls)
        for request in requests:
            status, body = bot.signed(request)
            assert status == 200, body[:300]
        assert pings(bot.slack.calls[start:]) == []

    edited()


def test_huge_texts_are_taken_without_a_5xx(fuzz_bot: FuzzBot) -> None:
    bot = fuzz_bot

    @fuzz(bot, 20)
    @given(request=message_events(bot, huge_text))
    def huge(request: Request) -> None:
        start = len(bot.slack.calls)
        status, body = bot.signed(request)
        assert status < 500, body[:300]
        assert pings(bot.slack.calls[start:]) == []

    huge()


# Ways a request can fail verification (malformed headers: test_malformed_signature_headers_get_401_not_500).
MUTATIONS = [
    "hex digit changed", "signature truncated", "signature extended", "version prefix", "no signature",
    "no timestamp", "no headers", "wrong secret", "timestamp moved", "stale", "from the future",
    "body edited",
]  # fmt: skip


@st.composite
def forged(draw: st.DrawFn, bot: FuzzBot) -> tuple[str, Request]:
    """A request as Slack sends it with exactly one thing wrong about its signature or timestamp
    (other bodies: test_an_unsigned_body_of_any_shape_gets_401)."""
    request = draw(
        st.one_of(message_events(bot, shaped=True), slash_commands(bot), interactions(bot, shaped=True))
    )
    how = draw(st.sampled_from(MUTATIONS))
    now = int(time.time())
    stamp, body = now, request.body
    if how == "stale":
        stamp = now - draw(st.integers(301, 10**8))
    elif how == "from the future":
        stamp = now + draw(st.integers(302, 10**8))
    headers = {**request.headers, **sign(body, SECRET, stamp)}
    signature = headers["X-Slack-Signature"]
    if how == "hex digit changed":
        # (drawn as a shift, not filtered: the signature changes with the clock, the draws must not)
        i, hexes = draw(st.integers(3, len(signature) - 1)), "0123456789abcdef"
        new = hexes[(hexes.index(signature[i]) + draw(st.integers(1, 15))) % 16]
        if draw(one_in_10):
            new = new.upper()
        headers["X-Slack-Signature"] = signature[:i] + new + signature[i + 1 :]
    elif how == "signature truncated":
        headers["X-Slack-Signature"] = signature[: draw(st.integers(0, len(signature) - 1))]
    elif how == "signature extended":
        headers["X-Slack-Signature"] = signature + draw(st.text("0123456789abcdef=", min_size=1, max_size=3))
    elif how == "version prefix":
        prefix = draw(st.sampled_from(["v1=", "V0=", "v0:", "", "v0", "v0==", "v00=", "sha256=", " v0="]))
        headers["X-Slack-Signature"] = prefix + signature[3:]
    elif how in {"no signature", "no headers"}:
        del headers["X-Slack-Signature"]
    if how in {"no timestamp", "no headers"}:
        del headers["X-Slack-Request-Timestamp"]
    elif how == "wrong secret":
        other = draw(st.text(min_size=1, max_size=40).filter(lambda s: s != SECRET))
        headers.update(sign(body, other, stamp))
    elif how == "timestamp moved":  # signed for one second, sent with another (both fresh)
        headers["X-Slack-Request-Timestamp"] = str(stamp + draw(st.integers(-200, 200).filter(bool)))
    elif how == "body edited":  # a field changed after signing; still a body Slack could send
        payload = json.loads(body) if request.headers.get("Content-Type") == JSON else None
        if isinstance(payload, dict):
            payload["team_id"] = str(payload.get("team_id")) + draw(st.text("T0X", min_size=1, max_size=2))
            body = json.dumps(payload).encode()
        else:
            body += b"&x=" + draw(st.text("abc", min_size=1, max_size=3)).encode()
    return how, Request(body, headers, f"{request.label}, {how}")


def test_a_wrong_signature_or_timestamp_gets_401_and_stores_nothing(fuzz_bot: FuzzBot) -> None:
    bot = fuzz_bot
    seen: set[str] = set()

    @fuzz(bot, 600)
    @given(case=forged(bot))
    @example(case=("stale by 301 s", Request.json({"type": "event_callback", "event": {"type": "message"}})))
    def refused(case: tuple[str, Request]) -> None:
        how, request = case
        seen.add(how)
        headers, body = request.headers, request.body
        if how == "stale by 301 s":
            headers = {**headers, **sign(body, SECRET, int(time.time()) - 301)}
        before, start = bot.row_counts(), len(bot.slack.calls)
        status, content = bot.post(body, headers)
        assert status == 401, content[:300]
        assert bot.row_counts() == before
        assert bot.slack.calls[start:] == []

    refused()
    assert seen >= set(MUTATIONS) or bot.database != "sqlite", sorted(set(MUTATIONS) - seen)


def test_malformed_signature_headers_get_401_not_500(fuzz_bot: FuzzBot) -> None:
    """Timestamps that are not whole seconds (empty, words, floats, 400 digits) and signatures with
    characters outside ASCII: refused like any wrong signature."""
    bot = fuzz_bot
    timestamps = st.one_of(
        st.sampled_from(["", "abc", " ", "1.5e9", "9" * 400, "-" + "9" * 30, "0x10", "nan"]),
        st.floats(allow_nan=True).map(str),
        unicode_text.filter(lambda t: not t.strip().isdigit()),
    )

    @fuzz(bot, 40)
    @given(
        request=st.one_of(message_events(bot), slash_commands(bot), interactions(bot)),
        stamp=timestamps,
        tail=st.sampled_from(["é", "\u00ff", "Ω", "\x00"]),
    )
    @example(request=Request.json({"type": "event_callback"}), stamp=str(time.time()), tail="0")
    @example(request=Request.json({"type": "event_callback"}), stamp="", tail="0")
    @example(request=Request.json({"type": "event_callback"}), stamp="now", tail="é")
    def refused(request: Request, stamp: str, tail: str) -> None:
        headers = {**request.headers, **sign(request.body, SECRET)}
        if stamp == "now":  # a fresh timestamp, a signature with a character outside ASCII
            headers["X-Slack-Signature"] = headers["X-Slack-Signature"][:-1] + tail
        else:
            headers["X-Slack-Request-Timestamp"] = stamp
        before = bot.row_counts()
        status, content = bot.post(request.body, headers)
        assert status == 401, content[:300]
        assert bot.row_counts() == before

    refused()


def test_an_unsigned_body_of_any_shape_gets_401(fuzz_bot: FuzzBot) -> None:
    """The signature is checked before the body is read."""
    bot = fuzz_bot

    @fuzz(bot, 40)
    @given(request=st.one_of(broken_bodies(), message_events(bot), interactions(bot)), forged=st.booleans())
    @example(request=Request(b"\xff\xfe{", {"Content-Type": JSON}), forged=False)
    def refused(request: Request, forged: bool) -> None:
        headers = dict(request.headers)
        if forged:
            headers.update(sign(request.body, "not-" + SECRET))
        before = bot.row_counts()
        status, content = bot.post(request.body, headers)
        assert status == 401, content[:300]
        assert bot.row_counts() == before

    refused()


def test_nothing_the_bot_ever_posted_would_ping(fuzz_bot: FuzzBot) -> None:
    """Over everything this module sent (and a batch of outcomes full of special mentions of its own,
    so the test stands alone): no call the stand-in recorded carries a ping, in any string."""
    bot = fuzz_bot
    w = bot.workspace

    @fuzz(bot, 60)
    @given(before=st.lists(st.sampled_from(MARKUP[:7]), min_size=1, max_size=3), after=message_text,
           outcome=st.sampled_from(OUTCOMES), user=st.sampled_from(["U0MAYA", "U0REP"]))  # fmt: skip
    def outcome_with_pings(before: list[str], after: str, outcome: str, user: str) -> None:
        text = " ".join(before) + " " + outcome + " " + after
        event = w.message("C0DEALS" if user == "U0MAYA" else "C0CHURN", text, bot.next_ts(), user=user)
        status, _ = bot.signed(Request.json(w.event_callback(event)))
        assert status == 200

    outcome_with_pings()
    calls = bot.slack.calls
    confirmations = [c for c in calls if c.method == "chat.postMessage" and c.status == 200]
    assert len(confirmations) >= bot.examples(40), "too few confirmations for this check to mean much"
    assert pings(calls) == []


ODD_SHAPES: dict[str, tuple[str, Any]] = {  # case: (where, what it holds)
    "event type a list": ("event.type", []),
    "event type an object": ("event.type", {"type": "message"}),
    "event type a number": ("event.type", 5),
    "view a list": ("view", []),
    "view a string": ("view", "note_correct"),
    "actions a string": ("actions", "note_change"),
    "an action a list": ("actions", [[]]),
    "action_id a list": ("action_id", []),
}


@pytest.mark.parametrize("case", list(ODD_SHAPES))
def test_odd_shapes_bolt_routes_on_get_no_5xx(fuzz_bot: FuzzBot, case: str) -> None:
    where, value = ODD_SHAPES[case]
    w = fuzz_bot.workspace
    if where == "event.type":
        event = {**w.message("C0DEALS", OUTCOMES[0], fuzz_bot.next_ts()), "type": value}
        request = Request.json(w.event_callback(event))
    elif where == "view":
        view = {"id": "V0FUZZ", "type": "modal", "callback_id": "note_correct", "private_metadata": "{}"}
        request = Request.form({"payload": json.dumps({**w.view_submission(view, {}), "view": value})})
    else:
        payload = w.block_actions("fit_share", "{}", response_url=fuzz_bot.slack.response_url())
        if where == "actions":
            payload["actions"] = value
        else:
            payload["actions"][0]["action_id"] = value
        request = Request.form({"payload": json.dumps(payload)})
    before = fuzz_bot.row_counts()["notes"]
    status, content = fuzz_bot.signed(request)
    assert status < 500, content[:300]
    assert fuzz_bot.row_counts()["notes"] == before


@pytest.mark.parametrize(
    ("field", "value", "event_id"),
    [("subtype", [], None), ("subtype", {"x": 1}, "Ev0FUZZODD1"), ("bot_profile", ["Salesforce"], None)],
)  # fmt: skip
def test_odd_fields_of_an_event_are_ignored_without_an_error(
    fuzz_bot: FuzzBot, field: str, value: Any, event_id: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Stored first (with an event_id) or handed to Bolt at once (without): a subtype or bot profile
    of the wrong type is no message to capture, and no error."""
    w = fuzz_bot.workspace
    event = w.bot_message("C0DEALS", OUTCOMES[0], fuzz_bot.next_ts(), name="Salesforce")
    event[field] = value
    body = w.event_callback(event)
    body["event_id"] = event_id
    with caplog.at_level(logging.ERROR):
        status, content = fuzz_bot.signed(Request.json(body))
    assert status < 500, content[:300]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


@pytest.mark.parametrize("action", ["fit_share", "fit_pick_0"])
def test_a_fit_button_echoes_its_query_escaped(fuzz_bot: FuzzBot, action: str) -> None:
    """The Share button carries the query as typed; when it no longer finds the account (renamed,
    deleted or re-imported since the answer), the refusal quotes the query, escaped."""
    bot = fuzz_bot
    value = json.dumps({"q": "<!channel> Nonexistent Holdings <!here>"})
    payload = bot.workspace.block_actions(action, value, response_url=bot.slack.response_url())
    start = len(bot.slack.calls)
    status, _ = bot.signed(Request.form({"payload": json.dumps(payload)}))
    assert status == 200
    told = [c for c in bot.slack.calls[start:] if c.method == "response_url"]
    assert told, "the person was told nothing"
    assert pings(told) == []


@pytest.mark.parametrize("database", DATABASES)
@pytest.mark.parametrize("where", ["text", "user"])
def test_a_nul_character_does_not_stop_capture(database: str, where: str, tmp_path: Path) -> None:
    """A message with a NUL in its text (or in its author's id), which PostgreSQL refuses in text,
    is neither retried for ever nor a stop to capture: the outcomes posted after it are still
    captured and confirmed."""
    with fuzz_bot_on(database, tmp_path) as bot:
        w = bot.workspace
        poison = w.message("C0DEALS", "Lost Contoso to Gong on price", bot.next_ts())
        poison[where] += "\x00"
        assert bot.signed(Request.json(w.event_callback(poison)))[0] == 200
        ts = bot.next_ts()
        after = w.message("C0DEALS", "Fourth Coffee not renewing in Jan, moving to ChurnZero", ts)
        assert bot.signed(Request.json(w.event_callback(after)))[0] == 200
        assert [c.args.get("thread_ts") for c in bot.slack.calls_to("chat.postMessage")][-1:] == [ts]
        assert bot.row_counts()["notes"] == 2  # the first too: its NUL is dropped
        assert bot.bot.inbox.counts() == {"done": 2, "spooled": 0}
