"""Retention: a daily job deletes notes older than `retention.notes_months` (icp.yml).

The job lives in the scheduler's per-process memory store, not in the database: deleting what is
older than a cutoff is idempotent, so two replicas running it, or a run repeated after a restart,
change nothing twice, and nothing needs to survive a restart. It runs a few minutes after start
and then every 24 hours, so a bot that is restarted every night still purges.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.base import BaseScheduler

from bot.context import AppContext
from insights.privacy import RetentionResult, apply_retention

log = logging.getLogger("icp_bot")

JOB_ID = "retention:{team}"
FIRST_RUN_DELAY = timedelta(minutes=5)  # after start: out of the way of the start-up work
EVERY = timedelta(hours=24)


def _now() -> datetime:
    return datetime.now(UTC)


def run_retention(ctx: AppContext, now: Callable[[], datetime] = _now) -> RetentionResult | None:
    """Purge once; None when retention is off or the purge failed (logged, retried next time)."""
    months = ctx.config.retention.notes_months
    if months is None:
        return None
    try:
        result = apply_retention(ctx.session_factory, ctx.team_id, now(), months)
    except Exception:
        log.exception("retention: could not delete old notes; the next run tries again")
        return None
    log.info(
        "retention: deleted %d notes and %d corrections from before %s (retention.notes_months: %d)",
        result.notes,
        result.examples,
        result.cutoff.strftime("%Y-%m-%d"),
        months,
    )
    return result


def schedule_retention(
    scheduler: BaseScheduler,
    ctx: AppContext,
    *,
    jobstore: str = "process",
    now: Callable[[], datetime] = _now,
) -> None:
    """Add the daily purge when retention.notes_months is set (replacing an earlier one)."""
    months = ctx.config.retention.notes_months
    if months is None:
        log.info("retention.notes_months is not set in icp.yml: captured notes are kept for good")
        return
    scheduler.add_job(
        run_retention,
        "interval",
        seconds=EVERY.total_seconds(),
        next_run_time=now() + FIRST_RUN_DELAY,
        kwargs={"ctx": ctx},
        id=JOB_ID.format(team=ctx.team_id),
        name="retention purge",
        jobstore=jobstore,
        replace_existing=True,
        coalesce=True,
        max_instances=1,
    )
    log.info("retention: notes older than %d months are deleted daily", months)
