"""An index of the deliveries not yet applied, per shop: a job takes its shop's waiting ones.

Revision ID: 0015_inbox_unprocessed
Revises: 0014_embedding_pending
"""

from __future__ import annotations

from neanelu.db.migrations.runner import run_sql_file

revision = "0015_inbox_unprocessed"
down_revision = "0014_embedding_pending"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0015_inbox_unprocessed.up.sql")


def downgrade() -> None:
    run_sql_file("0015_inbox_unprocessed.down.sql")
