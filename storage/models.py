"""SQLAlchemy 2 models. Every row belongs to a Slack workspace (`team_id`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Stable constraint names, so migrations can refer to them on every dialect.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[str]: JSON}


class Workspace(Base):
    """A Slack workspace (team). The CLI's default workspace before Slack is connected is `local`."""

    __tablename__ = "workspaces"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Account(Base):
    """A company from the CRM, in canonical fields plus the extra columns of its import."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("workspaces.team_id", ondelete="CASCADE"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(300), nullable=False)
    # Lookup keys derived from name and domain (insights.matching.account_keys).
    name_key: Mapped[str] = mapped_column(String(300), nullable=False)
    compact_key: Mapped[str] = mapped_column(String(300), nullable=False)
    first_word: Mapped[str] = mapped_column(String(300), nullable=False)
    domain: Mapped[str | None] = mapped_column(String(253))
    domain_stem: Mapped[str | None] = mapped_column(String(253))
    industry: Mapped[str | None] = mapped_column(String(200))
    employees: Mapped[int | None] = mapped_column(Integer)
    annual_revenue: Mapped[float | None] = mapped_column(Float)
    country: Mapped[str | None] = mapped_column(String(100))
    state: Mapped[str | None] = mapped_column(String(100))
    type: Mapped[str | None] = mapped_column(String(100))
    owner: Mapped[str | None] = mapped_column(String(200))
    arr: Mapped[float | None] = mapped_column(Float)
    salesforce_id: Mapped[str | None] = mapped_column(String(64))
    hubspot_id: Mapped[str | None] = mapped_column(String(64))
    external_id: Mapped[str | None] = mapped_column(String(200))
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    source: Mapped[str] = mapped_column(String(20), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    aliases: Mapped[list[AccountAlias]] = relationship(
        back_populates="account", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        Index("ix_accounts_team_name_key", "team_id", "name_key"),
        Index("ix_accounts_team_compact_key", "team_id", "compact_key"),
        Index("ix_accounts_team_first_word", "team_id", "first_word"),
        Index("ix_accounts_team_domain", "team_id", "domain"),
        Index("ix_accounts_team_domain_stem", "team_id", "domain_stem"),
        Index("uq_accounts_team_salesforce_id", "team_id", "salesforce_id", unique=True),
        Index("uq_accounts_team_hubspot_id", "team_id", "hubspot_id", unique=True),
        Index("uq_accounts_team_external_id", "team_id", "external_id", unique=True),
    )


class AccountAlias(Base):
    """Another name an account goes by (from import, or learned from people's corrections)."""

    __tablename__ = "account_aliases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("workspaces.team_id", ondelete="CASCADE"), nullable=False
    )
    account_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False
    )
    alias: Mapped[str] = mapped_column(String(300), nullable=False)
    alias_key: Mapped[str] = mapped_column(String(300), nullable=False)
    source: Mapped[str] = mapped_column(String(20), nullable=False, default="import")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    account: Mapped[Account] = relationship(back_populates="aliases")

    __table_args__ = (
        Index("uq_account_aliases_team_account_key", "team_id", "account_id", "alias_key", unique=True),
        Index("ix_account_aliases_team_key", "team_id", "alias_key"),
    )


class ImportRun(Base):
    """One file import: what came in and what it changed (for operators and support)."""

    __tablename__ = "import_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("workspaces.team_id", ondelete="CASCADE"), nullable=False
    )
    kind: Mapped[str] = mapped_column(String(20), nullable=False)  # accounts | outcomes
    source_name: Mapped[str] = mapped_column(Text, nullable=False)
    layout: Mapped[str] = mapped_column(String(20), nullable=False)
    rows: Mapped[int] = mapped_column(Integer, nullable=False)
    created: Mapped[int] = mapped_column(Integer, nullable=False)
    updated: Mapped[int] = mapped_column(Integer, nullable=False)
    unchanged: Mapped[int] = mapped_column(Integer, nullable=False)
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TaggingExample(Base):
    """A message with the labels a person gave it: a correction, or a labelled import."""

    __tablename__ = "tagging_examples"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("workspaces.team_id", ondelete="CASCADE"), nullable=False
    )
    text: Mapped[str] = mapped_column(Text, nullable=False)
    kind: Mapped[str | None] = mapped_column(String(30))
    account: Mapped[str | None] = mapped_column(String(300))
    competitor: Mapped[str | None] = mapped_column(String(200))
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list, nullable=False)
    source: Mapped[str] = mapped_column(String(20), nullable=False)  # correction | import
    created_by: Mapped[str | None] = mapped_column(String(32))  # Slack user id
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("ix_tagging_examples_team_id", "team_id", "id"),)


class Note(Base):
    """A captured outcome: one Slack message (or CRM row, or form), tagged, confirmable, auditable.

    Unique per workspace + channel + message ts, so Slack's retries and the message/app_mention
    double can only ever find the note that is already there. A retracted note is kept for audit
    and excluded from every number.
    """

    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("workspaces.team_id", ondelete="CASCADE"), nullable=False
    )
    channel: Mapped[str] = mapped_column(String(32), nullable=False)
    ts: Mapped[str] = mapped_column(String(32), nullable=False)  # the message's Slack ts
    thread_ts: Mapped[str | None] = mapped_column(String(32))
    user_id: Mapped[str | None] = mapped_column(String(32))  # a person, or the bot that posted it
    permalink: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    kind: Mapped[str | None] = mapped_column(String(30))
    account: Mapped[str | None] = mapped_column(String(300))  # canonical name, or as written
    account_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("accounts.id", ondelete="SET NULL"))
    tier: Mapped[str | None] = mapped_column(String(20))  # the account's tier when captured
    competitor: Mapped[str | None] = mapped_column(String(200))
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list, nullable=False)
    amount: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    confidence: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="active")  # active | retracted
    retracted_reason: Mapped[str | None] = mapped_column(String(30))  # deleted | not_an_outcome | edited
    source: Mapped[str] = mapped_column(String(20), nullable=False, default="message")  # message|import|form
    corrected_by: Mapped[str | None] = mapped_column(String(32))  # set once a person has labelled it
    corrected_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    event_id: Mapped[str | None] = mapped_column(String(64))
    # CRM imports: the opportunity/deal id, and what the row said (stage, deal type, deal name,
    # the loss reason as written, "renewal": "kept" for a renewal won, which is no outcome kind).
    crm_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    confirmation_ts: Mapped[str | None] = mapped_column(String(32))  # the bot's reply, to update/delete
    confirm_claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    posted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        Index("uq_notes_team_channel_ts", "team_id", "channel", "ts", unique=True),
        Index("ix_notes_team_account", "team_id", "account_id"),
        Index("ix_notes_team_posted_at", "team_id", "posted_at"),
    )


class DigestRun(Base):
    """One digest per workspace, channel and period: claimed before anything is sent.

    The unique key makes a second scheduler, a restart mid-post or a manual `--post` find the
    claim and stand down. state: working -> posted | error (| quiet when nothing was posted).
    """

    __tablename__ = "digest_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("workspaces.team_id", ondelete="CASCADE"), nullable=False
    )
    channel: Mapped[str] = mapped_column(String(32), nullable=False)
    period_start: Mapped[str] = mapped_column(String(10), nullable=False)  # ISO date, a Monday
    period_end: Mapped[str] = mapped_column(String(10), nullable=False)
    state: Mapped[str] = mapped_column(String(20), nullable=False)
    trigger: Mapped[str] = mapped_column(String(20), nullable=False)  # schedule | cli
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    message_ts: Mapped[str | None] = mapped_column(String(32))
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("uq_digest_runs_team_channel_period", "team_id", "channel", "period_start", unique=True),
    )


class InboxEvent(Base):
    """A Slack event as it arrived, stored before Slack gets its acknowledgement.

    A worker processes pending rows in order and marks them done; a process killed in between
    leaves them pending, and the next start (or another replica, once the claim is stale) takes
    them over. Unique per workspace + event_id, so Slack's retries of an event land on one row.
    The body holds message text: done rows are purged after a day.
    """

    __tablename__ = "inbox_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32), nullable=False)
    event_id: Mapped[str] = mapped_column(String(64), nullable=False)
    event_type: Mapped[str] = mapped_column(String(64), nullable=False)  # message, message_changed, …
    channel: Mapped[str | None] = mapped_column(String(32))
    ts: Mapped[str | None] = mapped_column(String(32))  # the message's ts, when it is a message
    user_id: Mapped[str | None] = mapped_column(String(32))  # its author, for deletion on request
    body: Mapped[str] = mapped_column(Text, nullable=False)  # the raw JSON
    state: Mapped[str] = mapped_column(String(12), nullable=False, default="pending")  # pending|done|failed
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("uq_inbox_events_team_event", "team_id", "event_id", unique=True),
        Index("ix_inbox_events_state_id", "state", "id"),
    )


class ChannelCursor(Base):
    """The newest message ts the bot has seen per capture channel, where history catch-up starts."""

    __tablename__ = "channel_cursors"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_ts: Mapped[str] = mapped_column(String(32), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
