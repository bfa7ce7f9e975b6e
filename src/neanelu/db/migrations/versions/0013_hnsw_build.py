"""Own partitions' HNSW indexes built with ef_construction = 200, chosen by measurement
(docs/search.md, `make bench-search`).

Revision ID: 0013_hnsw_build
Revises: 0012_embedding_batches
"""

from __future__ import annotations

from neanelu.db.migrations.runner import run_sql_file

revision = "0013_hnsw_build"
down_revision = "0012_embedding_batches"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0013_hnsw_build.up.sql")


def downgrade() -> None:
    run_sql_file("0013_hnsw_build.down.sql")
