"""Own partitions' HNSW indexes built with m = 32 (was 24): a large shop's query that found
none of its true 10 at m = 24 finds them (docs/search.md, `make bench-search`).

Revision ID: 0019_hnsw_m32
Revises: 0018_hnsw_ef_construction
"""

from __future__ import annotations

from neanelu.db.migrations.runner import run_sql_file

revision = "0019_hnsw_m32"
down_revision = "0018_hnsw_ef_construction"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0019_hnsw_m32.up.sql")


def downgrade() -> None:
    run_sql_file("0019_hnsw_m32.down.sql")
