"""The application role may ANALYZE the catalog tables after a bulk load.

Revision ID: 0002_app_maintain
Revises: 0001_initial
"""

from __future__ import annotations

from neanelu.db.migrations.runner import run_sql_file

revision = "0002_app_maintain"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0002_app_maintain.up.sql")


def downgrade() -> None:
    run_sql_file("0002_app_maintain.down.sql")
