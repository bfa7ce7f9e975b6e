"""Products that webhooks changed, marked for the shop's next embedding job (one job per shop and
window instead of one per delivery).

Revision ID: 0014_embedding_pending
Revises: 0013_hnsw_build
"""

from __future__ import annotations

from neanelu.db.migrations.runner import run_sql_file

revision = "0014_embedding_pending"
down_revision = "0013_hnsw_build"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0014_embedding_pending.up.sql")


def downgrade() -> None:
    run_sql_file("0014_embedding_pending.down.sql")
