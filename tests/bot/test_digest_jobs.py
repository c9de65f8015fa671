"""Posting the digest: on time across DST, exactly once per period and channel, retried, reported."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from sqlalchemy.orm import Session, sessionmaker

from bot.cli import main
from bot.context import AppContext
from bot.digest_jobs import DigestPoster, catch_up, last_run_at, next_runs
from bot.settings import Settings
from bot.standin import SlackStandIn
from insights.capture import IncomingMessage, capture_message
from insights.config import Config, DigestSettings
from insights.digest_runs import recent_digest_runs
from insights.service import build_tagger, import_accounts
from storage.engine import make_engine, make_session_factory
from storage.models import DigestRun
from storage.repositories import DigestRunRepository

TEAM = "T1"
ACCOUNTS = Path(__file__).parent.parent.parent / "bot" / "resources" / "sample_accounts.csv"
NY, HELSINKI = ZoneInfo("America/New_York"), ZoneInfo("Europe/Helsinki")
# Monday 2026-11-23, 09:00 in New York: the digest of the week Nov 16-23.
DUE = datetime(2026, 11, 23, 9, 0, tzinfo=NY)


# ---------------------------------------------------------------------------------------------
# The schedule, across daylight-saving changes


@pytest.mark.parametrize(
    ("zone", "start", "offsets"),
    [
        # New York: clocks go forward on Sunday 2026-03-08 and back on Sunday 2026-11-01.
        ("America/New_York", datetime(2026, 3, 1, tzinfo=UTC), [-5, -4, -4]),
        ("America/New_York", datetime(2026, 10, 25, tzinfo=UTC), [-4, -5, -5]),
        # Helsinki: forward on Sunday 2026-03-29, back on Sunday 2026-10-25.
        ("Europe/Helsinki", datetime(2026, 3, 22, tzinfo=UTC), [2, 3, 3]),
        ("Europe/Helsinki", datetime(2026, 10, 18, tzinfo=UTC), [3, 2, 2]),
    ],
)
def test_the_digest_stays_at_nine_local_across_dst(zone: str, start: datetime, offsets: list[int]) -> None:
    settings = DigestSettings(channel="C0DIGEST", day="monday", time="09:00", timezone=zone)
    runs = next_runs(settings, start, count=3)
    assert [(r.weekday(), r.hour, r.minute) for r in runs] == [(0, 9, 0)] * 3
    assert [r.utcoffset() for r in runs] == [timedelta(hours=h) for h in offsets]
    assert [r.astimezone(UTC).hour for r in runs] == [9 - h for h in offsets]


@pytest.mark.parametrize(
    ("zone", "frozen", "first_local", "first_utc"),
    [
        ("America/New_York", "2026-10-31 12:00:00", "Mon 2026-11-02 09:00 EST", "Mon 2026-11-02 14:00 UTC"),
        ("America/New_York", "2026-03-07 12:00:00", "Mon 2026-03-09 09:00 EDT", "Mon 2026-03-09 13:00 UTC"),
        ("Europe/Helsinki", "2026-10-24 12:00:00", "Mon 2026-10-26 09:00 EET", "Mon 2026-10-26 07:00 UTC"),
        ("Europe/Helsinki", "2026-03-28 12:00:00", "Mon 2026-03-30 09:00 EEST", "Mon 2026-03-30 06:00 UTC"),
    ],
)
def test_schedule_prints_the_next_five_times_in_both_zones(
    *,
    zone: str,
    frozen: str,
    first_local: str,
    first_utc: str,
    capsys: pytest.CaptureFixture[str],
    example_config_path: Path,
    tmp_path: Path,
) -> None:
    text = example_config_path.read_text(encoding="utf-8")
    assert "timezone: America/New_York" in text
    config = tmp_path / "icp.yml"
    config.write_text(text.replace("timezone: America/New_York", f"timezone: {zone}"), encoding="utf-8")
    with freeze_time(frozen):  # the Saturday before the clocks change
        assert main(["--config", str(config), "schedule"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"every Monday at 09:00 {zone}" in lines[0]
    assert lines[1].split("=") == [f"  {first_local}  ", f"  {first_utc}"]
    assert len(lines) == 6


def test_last_run_and_the_grace_period() -> None:
    settings = DigestSettings(channel="C0DIGEST", timezone="America/New_York", grace_hours=6)
    assert last_run_at(settings, DUE + timedelta(hours=2)) == DUE
    assert last_run_at(settings, DUE - timedelta(minutes=1)) == DUE - timedelta(days=7)


# ---------------------------------------------------------------------------------------------
# Posting


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn() as standin:
        yield standin


def _context(session_factory: sessionmaker[Session], config: Config, **digest: object) -> AppContext:
    settings = Settings.from_env()
    bound = session_factory.kw["bind"]
    new_config = config.model_copy(update={"digest": config.digest.model_copy(update=digest)})
    return AppContext(settings, bound, session_factory, new_config, TEAM)


@pytest.fixture
def filled(session_factory: sessionmaker[Session], config: Config) -> sessionmaker[Session]:
    """Accounts and a week of captured outcomes (Nov 16-20, 2026)."""
    import_accounts(session_factory, TEAM, ACCOUNTS.read_bytes(), ACCOUNTS.name)
    tagger = build_tagger(session_factory, TEAM, config.taxonomy)
    texts = ["Lost Contoso to Gong on price", "We won Fabrikam! $120k ARR", "closed won Northwind Traders"]
    for day, text in enumerate(texts):
        ts = datetime(2026, 11, 17 + day, 15, tzinfo=UTC).timestamp()
        message = IncomingMessage("C0DEALS", f"{ts:.6f}", text, "U0MAYA", permalink=f"https://x/p{int(ts)}")
        assert capture_message(session_factory, TEAM, message, tagger, config.icp).action == "created"
    return session_factory


def _client(slack: SlackStandIn) -> WebClient:
    return WebClient(
        token=slack.token,
        base_url=slack.base_url,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=3)],
    )


def _posted(slack: SlackStandIn) -> list[dict[str, object]]:
    """The digests that reached the channel (what people see, not the refused attempts)."""
    return [m for m in slack.messages_in("C0DIGEST") if not m.get("subtype")]


def test_the_digest_is_posted_once_with_its_chart_in_the_thread(
    filled: sessionmaker[Session], config: Config, slack: SlackStandIn
) -> None:
    poster = DigestPoster(_context(filled, config), _client(slack), backoff=(), sleep=lambda _: None)
    result = poster.post(as_of=DUE)
    assert (result.state, result.period.start if result.period else None) == ("posted", date(2026, 11, 16))
    assert result.chart_uploaded
    (message,) = _posted(slack)
    assert message["blocks"][0]["block_id"] == "icp-digest-2026-11-16"  # type: ignore[index]
    (complete,) = slack.calls_to("files.completeUploadExternal")
    assert (complete.args["channel_id"], complete.args["thread_ts"]) == ("C0DIGEST", result.message_ts)
    (upload,) = slack.calls_to("upload")
    assert upload.args["size"] > 1000
    # A second run (a restart, the CLI, the other replica) finds the claim and sends nothing.
    again = DigestPoster(_context(filled, config), _client(slack)).post(as_of=DUE + timedelta(hours=1))
    assert again.state == "already_posted" and len(_posted(slack)) == 1
    (run,) = recent_digest_runs(filled, TEAM)
    assert (run.state, run.period_start, run.message_ts, run.attempts) == (
        "posted",
        "2026-11-16",
        result.message_ts,
        1,
    )


def test_two_schedulers_racing_post_exactly_once(
    filled: sessionmaker[Session], config: Config, slack: SlackStandIn, db_url: str
) -> None:
    # Each "process" has its own engine and client, as two bot replicas on one database would.
    posters = []
    for _ in range(2):
        factory = make_session_factory(make_engine(db_url))
        posters.append(
            DigestPoster(_context(factory, config), _client(slack), backoff=(), sleep=lambda _: None)
        )
    barrier = threading.Barrier(len(posters))
    results: list[str] = []

    def run(poster: DigestPoster) -> None:
        barrier.wait()
        results.append(poster.post(as_of=DUE).state)

    threads = [threading.Thread(target=run, args=(p,)) for p in posters]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) in (["in_progress", "posted"], ["already_posted", "posted"])
    assert len(_posted(slack)) == 1


def test_rate_limited_twice_the_digest_still_arrives_once(
    filled: sessionmaker[Session], config: Config, slack: SlackStandIn
) -> None:
    slack.rate_limit_next("chat.postMessage", times=2, retry_after=0)
    result = DigestPoster(_context(filled, config), _client(slack), backoff=(), sleep=lambda _: None).post(
        as_of=DUE
    )
    assert result.state == "posted"
    statuses = [c.status for c in slack.calls_to("chat.postMessage")]
    assert statuses == [429, 429, 200] and len(_posted(slack)) == 1


def test_a_failure_is_retried_recorded_and_told_to_the_admin_and_a_later_post_succeeds(
    filled: sessionmaker[Session], config: Config, slack: SlackStandIn
) -> None:
    ctx = _context(filled, config, admin="U0ADMIN")
    slack.fail_next("chat.postMessage", "internal_error", times=1)
    slack.fail_next("chat.postMessage", "not_in_channel", times=1)
    waits: list[float] = []
    result = DigestPoster(ctx, _client(slack), backoff=(2.0, 10.0), sleep=waits.append).post(as_of=DUE)
    assert result.state == "error" and result.attempts == 2 and waits == [2.0]  # permanent: no third try
    assert "not_in_channel: invite the bot" in (result.error or "")
    (dm,) = [c.args for c in slack.calls_to("chat.postMessage") if c.args.get("channel") == "U0ADMIN"]
    assert "could not be posted" in str(dm["text"]) and "icp-bot digest --post" in str(dm["text"])
    (run,) = recent_digest_runs(filled, TEAM)
    assert run.state == "error" and "not_in_channel" in (run.error or "")
    # Someone invites the bot and posts by hand: the failed run is claimed again, once.
    retry = DigestPoster(ctx, _client(slack), backoff=(), sleep=lambda _: None, trigger="cli").post(as_of=DUE)
    assert retry.state == "posted" and len(_posted(slack)) == 1
    assert recent_digest_runs(filled, TEAM)[0].state == "posted"


def test_a_run_that_died_mid_post_is_recovered_without_a_second_post(
    filled: sessionmaker[Session], config: Config, slack: SlackStandIn
) -> None:
    ctx = _context(filled, config)
    first = DigestPoster(ctx, _client(slack), backoff=(), sleep=lambda _: None).post(as_of=DUE)
    assert first.state == "posted"
    with filled.begin() as session:  # as if the process died after posting, before recording it
        run = DigestRunRepository(session, TEAM).get("C0DIGEST", "2026-11-16")
        assert run is not None
        run.state, run.message_ts = "working", None
        run.claimed_at = datetime.now(UTC) - timedelta(hours=1)
    again = DigestPoster(ctx, _client(slack)).post(as_of=DUE)
    assert (again.state, again.message_ts) == ("recovered", first.message_ts)
    assert len(_posted(slack)) == 1
    # A claim that is still fresh is left to its owner.
    with filled.begin() as session:
        run = session.query(DigestRun).one()
        run.state, run.claimed_at = "working", datetime.now(UTC)
    assert DigestPoster(ctx, _client(slack)).post(as_of=DUE).state == "in_progress"


def test_a_missed_run_posts_on_return_within_grace_and_not_after(
    filled: sessionmaker[Session], config: Config, slack: SlackStandIn
) -> None:
    poster = DigestPoster(
        _context(filled, config, grace_hours=6), _client(slack), backoff=(), sleep=lambda _: None
    )
    assert catch_up(poster, DUE + timedelta(hours=7)) is None
    assert _posted(slack) == []
    result = catch_up(poster, DUE + timedelta(hours=2))
    assert result is not None and result.state == "posted"
    assert catch_up(poster, DUE + timedelta(hours=3)) is not None and len(_posted(slack)) == 1


def test_a_quiet_week_posts_one_line_or_nothing(
    session_factory: sessionmaker[Session], config: Config, slack: SlackStandIn
) -> None:
    result = DigestPoster(_context(session_factory, config, quiet_week="skip"), _client(slack)).post(
        as_of=DUE
    )
    assert result.state == "quiet" and _posted(slack) == []
    later = DUE + timedelta(days=7)
    posted = DigestPoster(_context(session_factory, config), _client(slack)).post(as_of=later)
    assert posted.state == "posted"
    (message,) = _posted(slack)
    assert "Quiet week" in str(message["text"]) and len(str(message["text"]).splitlines()) <= 2
    assert slack.calls_to("files.completeUploadExternal") == []


def test_no_channel_configured(
    session_factory: sessionmaker[Session], config: Config, slack: SlackStandIn
) -> None:
    ctx = _context(session_factory, config)
    ctx = replace(ctx, config=ctx.config.model_copy(update={"digest": DigestSettings()}))
    assert DigestPoster(ctx, _client(slack)).post(as_of=DUE).state == "no_channel"
