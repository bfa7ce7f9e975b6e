"""Own partitions' HNSW indexes built with ef_construction = 400 (was 200): more of a large
shop's vectors within a search's reach (docs/search.md, `make bench-search`).

Revision ID: 0018_hnsw_ef_construction
Revises: 0017_hnsw_m24
"""

from __future__ import annotations

from neanelu.db.migrations.runner import run_sql_file

revision = "0018_hnsw_ef_construction"
down_revision = "0017_hnsw_m24"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0018_hnsw_ef_construction.up.sql")


def downgrade() -> None:
    run_sql_file("0018_hnsw_ef_construction.down.sql")
