"""Embedding runs through the OpenAI Batch API: batches and requests recorded, polled later.

Revision ID: 0012_embedding_batches
Revises: 0011_newer_wins
"""

from __future__ import annotations

from neanelu.db.migrations.runner import run_sql_file

revision = "0012_embedding_batches"
down_revision = "0011_newer_wins"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0012_embedding_batches.up.sql")


def downgrade() -> None:
    run_sql_file("0012_embedding_batches.down.sql")
