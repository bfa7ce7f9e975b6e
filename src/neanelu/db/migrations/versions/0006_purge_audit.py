"""Purges only when due (shop/redact checked against the uninstall), each decision recorded;
Shopify's numeric shop id kept from app/uninstalled.

Revision ID: 0006_purge_audit
Revises: 0005_least_privilege
"""

from __future__ import annotations

from neanelu.db.migrations.runner import run_sql_file

revision = "0006_purge_audit"
down_revision = "0005_least_privilege"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0006_purge_audit.up.sql")


def downgrade() -> None:
    run_sql_file("0006_purge_audit.down.sql")
