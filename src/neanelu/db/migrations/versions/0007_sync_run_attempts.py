"""Every attempt of a sync run: holder, heartbeat, outcome and error.

Revision ID: 0007_sync_run_attempts
Revises: 0006_purge_audit
"""

from __future__ import annotations

from neanelu.db.migrations.runner import run_sql_file

revision = "0007_sync_run_attempts"
down_revision = "0006_purge_audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0007_sync_run_attempts.up.sql")


def downgrade() -> None:
    run_sql_file("0007_sync_run_attempts.down.sql")
