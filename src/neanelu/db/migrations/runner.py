"""Runs a migration's SQL file on Alembic's connection, with the app role's name filled in."""

from __future__ import annotations

from importlib import resources

from alembic import op
from psycopg import sql


def run_sql_file(name: str) -> None:
    text = resources.files("neanelu.db.migrations").joinpath("sql", name).read_text("utf-8")
    app_role = op.get_context().config.get_main_option("neanelu.app_role") if op.get_context().config else None
    raw = op.get_bind().connection.driver_connection
    role = sql.Identifier(app_role or "neanelu_app").as_string(raw)
    # psycopg runs a parameterless multi-statement string through the simple query protocol.
    raw.execute(text.replace("{app_role}", role))
