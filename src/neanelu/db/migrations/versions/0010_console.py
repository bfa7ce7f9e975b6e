"""The operator console: operators, their sessions, the audit log, and the console's read
functions (SECURITY DEFINER, owned by the owner role, each scoped to one shop under RLS).

Revision ID: 0010_console
Revises: 0004_owner_apps
"""

from __future__ import annotations

from neanelu.db.migrations.runner import run_sql_file

revision = "0010_console"
down_revision = "0004_owner_apps"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0010_console.up.sql")


def downgrade() -> None:
    run_sql_file("0010_console.down.sql")
