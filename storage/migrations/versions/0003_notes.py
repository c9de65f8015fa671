"""Notes: captured outcomes, unique per workspace + channel + message ts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("ts", sa.String(32), nullable=False),
        sa.Column("thread_ts", sa.String(32), nullable=True),
        sa.Column("user_id", sa.String(32), nullable=True),
        sa.Column("permalink", sa.Text(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(30), nullable=True),
        sa.Column("account", sa.String(300), nullable=True),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("tier", sa.String(20), nullable=True),
        sa.Column("competitor", sa.String(200), nullable=True),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("amount", sa.JSON(), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("retracted_reason", sa.String(30), nullable=True),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("corrected_by", sa.String(32), nullable=True),
        sa.Column("corrected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("event_id", sa.String(64), nullable=True),
        sa.Column("confirmation_ts", sa.String(32), nullable=True),
        sa.Column("confirm_claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"],
            name=op.f("fk_notes_account_id_accounts"), ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["workspaces.team_id"],
            name=op.f("fk_notes_team_id_workspaces"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notes")),
    )  # fmt: skip
    op.create_index("uq_notes_team_channel_ts", "notes", ["team_id", "channel", "ts"], unique=True)
    op.create_index("ix_notes_team_account", "notes", ["team_id", "account_id"])
    op.create_index("ix_notes_team_posted_at", "notes", ["team_id", "posted_at"])


def downgrade() -> None:
    op.drop_index("ix_notes_team_posted_at", table_name="notes")
    op.drop_index("ix_notes_team_account", table_name="notes")
    op.drop_index("uq_notes_team_channel_ts", table_name="notes")
    op.drop_table("notes")
