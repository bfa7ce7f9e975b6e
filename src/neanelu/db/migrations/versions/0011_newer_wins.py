"""The newer-wins rule as one SQL function, shared by the bulk merges and the webhook upserts
(docs/newer-wins.md).

Revision ID: 0011_newer_wins
Revises: 0010_analyze_fallback
"""

from __future__ import annotations

from neanelu.db.migrations.runner import run_sql_file

revision = "0011_newer_wins"
down_revision = "0010_analyze_fallback"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0011_newer_wins.up.sql")


def downgrade() -> None:
    run_sql_file("0011_newer_wins.down.sql")
