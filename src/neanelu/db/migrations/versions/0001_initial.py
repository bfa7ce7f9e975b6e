"""Initial schema: shops, catalog tables, sync runs, inbox, outbox, row-level security.

Revision ID: 0001_initial
Revises:
"""

from __future__ import annotations

from neanelu.db.migrations.runner import run_sql_file

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0001_initial.up.sql")


def downgrade() -> None:
    run_sql_file("0001_initial.down.sql")
