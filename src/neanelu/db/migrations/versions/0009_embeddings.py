"""Semantic search: vectors partitioned by shop, full-text documents, search settings, runs.

Revision ID: 0009_embeddings
Revises: 0004_owner_apps
"""

from __future__ import annotations

from neanelu.db.migrations.runner import run_sql_file

revision = "0009_embeddings"
down_revision = "0004_owner_apps"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0009_embeddings.up.sql")


def downgrade() -> None:
    run_sql_file("0009_embeddings.down.sql")
