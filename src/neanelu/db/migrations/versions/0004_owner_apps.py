"""Other apps' tokens per shop for their app-owned metafields; what a sync keeps of unread ones.

Revision ID: 0004_owner_apps
Revises: 0003_batch_ids
"""

from __future__ import annotations

from neanelu.db.migrations.runner import run_sql_file

revision = "0004_owner_apps"
down_revision = "0003_batch_ids"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0004_owner_apps.up.sql")


def downgrade() -> None:
    run_sql_file("0004_owner_apps.down.sql")
