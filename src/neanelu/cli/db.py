"""`neanelu db ...`: the embedded servers, migrations, the seed catalog and a SQL shell."""

from __future__ import annotations

import os
import shutil
import time
from typing import Annotated

import typer
from rich.table import Table

from neanelu.catalog.seed import SeedResult, catalog_counts, ensure_seed_shop, seed_catalog
from neanelu.cli.common import console, err_console, run, settings_from
from neanelu.db import migrate
from neanelu.db.embedded import postgres_bin, stop_postgres, stop_redis
from neanelu.db.pool import PoolSizes, connection_tenant_scope, create_pool
from neanelu.db.services import ServiceUrls, redact_url, resolve_services

app = typer.Typer(help="Databases: start, stop, migrate, seed, shell.", no_args_is_help=True)


def _up(ctx: typer.Context) -> ServiceUrls:
    settings = settings_from(ctx)
    try:
        return resolve_services(settings)
    except Exception as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


@app.command()
def up(ctx: typer.Context) -> None:
    """Start the embedded PostgreSQL and Redis (unless URLs are configured), migrate, print URLs."""
    started = time.perf_counter()
    urls = _up(ctx)
    migrate.upgrade(urls.postgres_owner, urls.app_role)
    table = Table(title="neanelu services", show_header=True)
    table.add_column("service")
    table.add_column("url")
    table.add_column("source")
    table.add_row(
        "PostgreSQL (app)", redact_url(urls.postgres_app), _source(urls.embedded_postgres)
    )
    table.add_row(
        "PostgreSQL (owner)", redact_url(urls.postgres_owner), _source(urls.embedded_postgres)
    )
    table.add_row("Redis", redact_url(urls.redis), _source(urls.embedded_redis))
    console.print(table)
    console.print(f"ready in {time.perf_counter() - started:.2f} s (migrations at head)")


def _source(embedded: bool) -> str:
    return "embedded" if embedded else "configured"


@app.command()
def down(ctx: typer.Context) -> None:
    """Stop the embedded servers (configured servers are left alone)."""
    settings = settings_from(ctx)
    stopped_pg = not settings.postgres_url and stop_postgres(settings.data_dir)
    stopped_redis = not settings.redis_url and stop_redis(settings.data_dir)
    console.print(
        f"PostgreSQL: {'stopped' if stopped_pg else 'not running here'}; "
        f"Redis: {'stopped' if stopped_redis else 'not running here'}"
    )


@app.command("migrate")
def migrate_cmd(
    ctx: typer.Context,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
    down: Annotated[bool, typer.Option("--down", help="Downgrade to the revision.")] = False,
) -> None:
    """Apply (or undo) schema migrations as the owner role."""
    urls = _up(ctx)
    if down:
        migrate.downgrade(urls.postgres_owner, urls.app_role, revision)
    else:
        migrate.upgrade(urls.postgres_owner, urls.app_role, revision)
    console.print(f"schema at {migrate.current_revision(urls.postgres_owner) or 'base'}")


@app.command()
def shell(
    ctx: typer.Context,
    as_app: Annotated[
        bool, typer.Option("--as-app", help="Connect as the application role.")
    ] = False,
) -> None:
    """Open psql on the database (docs/plan.md's "db studio")."""
    urls = _up(ctx)
    psql = shutil.which("psql") if not urls.embedded_postgres else str(postgres_bin("psql"))
    if psql is None:
        err_console.print("[red]psql not found on PATH[/red]")
        raise typer.Exit(1)
    os.execv(psql, [psql, urls.postgres_app if as_app else urls.postgres_owner])  # noqa: S606


@app.command()
def seed(
    ctx: typer.Context,
    products: Annotated[
        int, typer.Option(min=1, max=10_000_000, help="Products to load.")
    ] = 10_000,
    seed_value: Annotated[int, typer.Option("--seed", help="Faker seed.")] = 42,
) -> None:
    """Load a synthetic catalog (same data every run) into the seed shop through COPY."""
    urls = _up(ctx)
    migrate.upgrade(urls.postgres_owner, urls.app_role)
    result, counts = run(_seed(urls.postgres_app, products, seed_value))
    console.print(
        f"loaded {result.products:,} products and {result.variants:,} variants in "
        f"{result.seconds:.2f} s ({result.rows_per_s:,.0f} rows/s)"
    )
    console.print(
        f"seed shop now holds {counts['products']:,} products, {counts['variants']:,} variants"
    )


async def _seed(url: str, products: int, seed_value: int) -> tuple[SeedResult, dict[str, int]]:
    pool = create_pool(url, PoolSizes(1, 1), name="neanelu-seed")
    await pool.open(wait=True)
    try:
        async with pool.connection() as conn:
            async with conn.transaction():
                shop_id = await ensure_seed_shop(conn)
            async with connection_tenant_scope(conn, shop_id):
                result = await seed_catalog(conn, shop_id, products, seed_value)
            async with connection_tenant_scope(conn, shop_id):
                counts = await catalog_counts(conn)
        return result, counts
    finally:
        await pool.close()
