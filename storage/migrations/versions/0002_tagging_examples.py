"""Tagging examples: corrections and labelled imports the tagger learns from.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tagging_examples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(30), nullable=True),
        sa.Column("account", sa.String(300), nullable=True),
        sa.Column("competitor", sa.String(200), nullable=True),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("created_by", sa.String(32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"], ["workspaces.team_id"],
            name=op.f("fk_tagging_examples_team_id_workspaces"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tagging_examples")),
    )  # fmt: skip
    op.create_index("ix_tagging_examples_team_id", "tagging_examples", ["team_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_tagging_examples_team_id", table_name="tagging_examples")
    op.drop_table("tagging_examples")
