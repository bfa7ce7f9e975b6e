"""Least privilege for the application role: shops rows by tenant, secrets through functions,
catalog rows checked against their shop once per statement (no role skips foreign keys).

Revision ID: 0005_least_privilege
Revises: 0004_owner_apps
"""

from __future__ import annotations

from neanelu.db.migrations.runner import run_sql_file

revision = "0005_least_privilege"
down_revision = "0004_owner_apps"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0005_least_privilege.up.sql")


def downgrade() -> None:
    run_sql_file("0005_least_privilege.down.sql")
