"""The daily retention job: scheduled only when retention.notes_months is set, purges, never raises."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.orm import Session, sessionmaker

from bot import retention_jobs
from bot.context import AppContext
from bot.retention_jobs import run_retention, schedule_retention
from bot.settings import Settings
from insights.capture import IncomingMessage, capture_message, iter_notes
from insights.config import Config
from insights.tagging import Tagger

TEAM = "T1"
NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


def _context(session_factory: sessionmaker[Session], config: Config, months: int | None) -> AppContext:
    retention = config.retention.model_copy(update={"notes_months": months})
    kept = config.model_copy(update={"retention": retention})
    return AppContext(Settings.from_env(), session_factory.kw["bind"], session_factory, kept, TEAM)


@pytest.fixture
def scheduler() -> Iterator[BackgroundScheduler]:
    scheduler = BackgroundScheduler(timezone="UTC", jobstores={"process": MemoryJobStore()})
    scheduler.start(paused=True)
    try:
        yield scheduler
    finally:
        scheduler.shutdown(wait=False)


def test_no_job_when_notes_are_kept_for_good(
    session_factory: sessionmaker[Session],
    config: Config,
    scheduler: BackgroundScheduler,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="icp_bot"):
        schedule_retention(scheduler, _context(session_factory, config, None), now=lambda: NOW)
    assert scheduler.get_jobs() == []
    assert "captured notes are kept for good" in caplog.text
    assert run_retention(_context(session_factory, config, None)) is None


def test_a_daily_job_in_the_process_store_starts_soon_after_start(
    session_factory: sessionmaker[Session], config: Config, scheduler: BackgroundScheduler
) -> None:
    ctx = _context(session_factory, config, 12)
    schedule_retention(scheduler, ctx, now=lambda: NOW)
    schedule_retention(scheduler, ctx, now=lambda: NOW)  # a second call replaces the job
    (job,) = scheduler.get_jobs(jobstore="process")
    assert job.id == "retention:T1" and job.trigger.interval == timedelta(hours=24)
    assert job.next_run_time == NOW + timedelta(minutes=5)
    assert job.kwargs == {"ctx": ctx}


def test_the_job_purges_old_notes_and_logs_the_count(
    session_factory: sessionmaker[Session],
    config: Config,
    tagger: Tagger,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for when, text in [(datetime(2025, 1, 5, tzinfo=UTC), "Lost Contoso to Gong on price"),
                       (datetime(2026, 11, 2, tzinfo=UTC), "We won Fabrikam! $120k ARR")]:  # fmt: skip
        message = IncomingMessage("C0DEALS", f"{when.timestamp():.6f}", text, "U0MAYA")
        capture_message(session_factory, TEAM, message, tagger, config.icp)
    with caplog.at_level(logging.INFO, logger="icp_bot"):
        result = run_retention(_context(session_factory, config, 12), now=lambda: NOW)
    assert result is not None and (result.notes, result.examples) == (1, 0)
    assert [n.text for n in iter_notes(session_factory, TEAM)] == ["We won Fabrikam! $120k ARR"]
    assert "retention: deleted 1 notes and 0 corrections from before 2025-11-22" in caplog.text


def test_a_failing_purge_is_logged_and_tried_again_next_time(
    session_factory: sessionmaker[Session],
    config: Config,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("database is locked")

    monkeypatch.setattr(retention_jobs, "apply_retention", broken)
    with caplog.at_level(logging.ERROR, logger="icp_bot"):
        assert run_retention(_context(session_factory, config, 12), now=lambda: NOW) is None
    assert "could not delete old notes" in caplog.text and "database is locked" in caplog.text
