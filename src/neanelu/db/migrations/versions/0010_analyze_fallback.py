"""On PostgreSQL older than 17 (no MAINTAIN privilege), a function owned by the owner role that
ANALYZEs the catalog tables for the application role after a bulk load.

Revision ID: 0010_analyze_fallback
Revises: 0009_console
"""

from __future__ import annotations

from neanelu.db.migrations.runner import run_sql_file

revision = "0010_analyze_fallback"
down_revision = "0009_console"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0010_analyze_fallback.up.sql")


def downgrade() -> None:
    run_sql_file("0010_analyze_fallback.down.sql")
