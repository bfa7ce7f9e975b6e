"""Semantic search: vectors partitioned by shop, full-text documents, search settings, runs.

Revision ID: 0008_embeddings
Revises: 0007_sync_run_attempts
"""

from __future__ import annotations

from neanelu.db.migrations.runner import run_sql_file

revision = "0008_embeddings"
down_revision = "0007_sync_run_attempts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0008_embeddings.up.sql")


def downgrade() -> None:
    run_sql_file("0008_embeddings.down.sql")
