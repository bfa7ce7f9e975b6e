"""An inventory level is named by its item and location, not by the number of its GID.

Revision ID: 0016_level_identity
Revises: 0015_inbox_unprocessed
"""

from __future__ import annotations

from neanelu.db.migrations.runner import run_sql_file

revision = "0016_level_identity"
down_revision = "0015_inbox_unprocessed"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0016_level_identity.up.sql")


def downgrade() -> None:
    run_sql_file("0016_level_identity.down.sql")
