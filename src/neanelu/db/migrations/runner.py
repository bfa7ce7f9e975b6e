"""Runs a migration's SQL file on Alembic's connection, with the app role's name filled in."""

from __future__ import annotations

from alembic import op
from psycopg import sql

from neanelu.db.sql_files import load_sql


def run_sql_file(name: str) -> None:
    text = load_sql(name, "neanelu.db.migrations")
    config = op.get_context().config
    app_role = config.get_main_option("neanelu.app_role") if config is not None else None
    raw = op.get_bind().connection.driver_connection
    if raw is None:
        raise RuntimeError("migration has no database connection")
    role = sql.Identifier(app_role or "neanelu_app").as_string(raw)
    # psycopg runs a parameterless multi-statement string through the simple query protocol.
    raw.execute(text.replace("{app_role}", role))
