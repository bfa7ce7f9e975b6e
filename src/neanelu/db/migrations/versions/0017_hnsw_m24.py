"""Own partitions' HNSW indexes built with m = 24 (was 16), chosen by measurement
(docs/search.md, `make bench-search`).

Revision ID: 0017_hnsw_m24
Revises: 0016_level_identity
"""

from __future__ import annotations

from neanelu.db.migrations.runner import run_sql_file

revision = "0017_hnsw_m24"
down_revision = "0016_level_identity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0017_hnsw_m24.up.sql")


def downgrade() -> None:
    run_sql_file("0017_hnsw_m24.down.sql")
