"""Schema migrations (Alembic) driven from code, as the owner role."""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool


def _sqlalchemy_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def alembic_config(owner_url: str, app_role: str) -> Config:
    cfg = Config()
    cfg.set_main_option(
        "script_location", str(resources.files("neanelu.db").joinpath("migrations"))
    )
    # ConfigParser interpolates '%': URLs with escaped characters must survive it.
    cfg.set_main_option("sqlalchemy.url", _sqlalchemy_url(owner_url).replace("%", "%%"))
    cfg.set_main_option("neanelu.app_role", app_role)
    return cfg


def upgrade(owner_url: str, app_role: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(owner_url, app_role), revision)


def downgrade(owner_url: str, app_role: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(owner_url, app_role), revision)


def head_revision() -> str | None:
    script = ScriptDirectory.from_config(alembic_config("postgresql://unused", "unused"))
    return script.get_current_head()


def current_revision(owner_url: str) -> str | None:
    engine = create_engine(_sqlalchemy_url(owner_url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
