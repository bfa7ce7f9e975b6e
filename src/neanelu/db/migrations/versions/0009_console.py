"""The operator console: operators, their sessions, the audit log, and the console's read
functions (SECURITY DEFINER, owned by the owner role, each scoped to one shop under RLS).

Revision ID: 0009_console
Revises: 0008_embeddings
"""

from __future__ import annotations

from neanelu.db.migrations.runner import run_sql_file

revision = "0009_console"
down_revision = "0008_embeddings"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0009_console.up.sql")


def downgrade() -> None:
    run_sql_file("0009_console.down.sql")
