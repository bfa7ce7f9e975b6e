"""Own partitions' HNSW indexes built with m = 32 and ef_construction = 400 (were 24 and 200):
more of a large shop's vectors within reach, and its query that found none of its true 10 at
m = 24 finds them (docs/search.md, `make bench-search`).

Revision ID: 0018_hnsw_m32
Revises: 0017_hnsw_m24
"""

from __future__ import annotations

from neanelu.db.migrations.runner import run_sql_file

revision = "0018_hnsw_m32"
down_revision = "0017_hnsw_m24"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0018_hnsw_m32.up.sql")


def downgrade() -> None:
    run_sql_file("0018_hnsw_m32.down.sql")
