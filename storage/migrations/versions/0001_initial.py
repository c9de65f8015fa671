"""Workspaces, accounts, aliases and import runs.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workspaces",
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("team_id", name=op.f("pk_workspaces")),
    )
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("name_key", sa.String(300), nullable=False),
        sa.Column("compact_key", sa.String(300), nullable=False),
        sa.Column("first_word", sa.String(300), nullable=False),
        sa.Column("domain", sa.String(253), nullable=True),
        sa.Column("domain_stem", sa.String(253), nullable=True),
        sa.Column("industry", sa.String(200), nullable=True),
        sa.Column("employees", sa.Integer(), nullable=True),
        sa.Column("annual_revenue", sa.Float(), nullable=True),
        sa.Column("country", sa.String(100), nullable=True),
        sa.Column("state", sa.String(100), nullable=True),
        sa.Column("type", sa.String(100), nullable=True),
        sa.Column("owner", sa.String(200), nullable=True),
        sa.Column("arr", sa.Float(), nullable=True),
        sa.Column("salesforce_id", sa.String(64), nullable=True),
        sa.Column("hubspot_id", sa.String(64), nullable=True),
        sa.Column("external_id", sa.String(200), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["workspaces.team_id"],
            name=op.f("fk_accounts_team_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
    )
    op.create_index("ix_accounts_team_name_key", "accounts", ["team_id", "name_key"])
    op.create_index("ix_accounts_team_compact_key", "accounts", ["team_id", "compact_key"])
    op.create_index("ix_accounts_team_first_word", "accounts", ["team_id", "first_word"])
    op.create_index("ix_accounts_team_domain", "accounts", ["team_id", "domain"])
    op.create_index("ix_accounts_team_domain_stem", "accounts", ["team_id", "domain_stem"])
    op.create_index("uq_accounts_team_salesforce_id", "accounts", ["team_id", "salesforce_id"], unique=True)
    op.create_index("uq_accounts_team_hubspot_id", "accounts", ["team_id", "hubspot_id"], unique=True)
    op.create_index("uq_accounts_team_external_id", "accounts", ["team_id", "external_id"], unique=True)
    op.create_table(
        "account_aliases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(300), nullable=False),
        sa.Column("alias_key", sa.String(300), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_account_aliases_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["workspaces.team_id"],
            name=op.f("fk_account_aliases_team_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_aliases")),
    )
    op.create_index(
        "uq_account_aliases_team_account_key",
        "account_aliases",
        ["team_id", "account_id", "alias_key"],
        unique=True,
    )
    op.create_index("ix_account_aliases_team_key", "account_aliases", ["team_id", "alias_key"])
    op.create_table(
        "import_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("source_name", sa.Text(), nullable=False),
        sa.Column("layout", sa.String(20), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["workspaces.team_id"],
            name=op.f("fk_import_runs_team_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_runs")),
    )


def downgrade() -> None:
    op.drop_table("import_runs")
    op.drop_index("ix_account_aliases_team_key", table_name="account_aliases")
    op.drop_index("uq_account_aliases_team_account_key", table_name="account_aliases")
    op.drop_table("account_aliases")
    for name in (
        "uq_accounts_team_external_id",
        "uq_accounts_team_hubspot_id",
        "uq_accounts_team_salesforce_id",
        "ix_accounts_team_domain_stem",
        "ix_accounts_team_domain",
        "ix_accounts_team_first_word",
        "ix_accounts_team_compact_key",
        "ix_accounts_team_name_key",
    ):
        op.drop_index(name, table_name="accounts")
    op.drop_table("accounts")
    op.drop_table("workspaces")
