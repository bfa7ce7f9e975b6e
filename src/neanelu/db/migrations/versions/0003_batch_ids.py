"""Cheap UUIDv7 ids for the rows a bulk merge inserts (one random draw per batch, not per row).

Revision ID: 0003_batch_ids
Revises: 0002_app_maintain
"""

from __future__ import annotations

from neanelu.db.migrations.runner import run_sql_file

revision = "0003_batch_ids"
down_revision = "0002_app_maintain"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0003_batch_ids.up.sql")


def downgrade() -> None:
    run_sql_file("0003_batch_ids.down.sql")
